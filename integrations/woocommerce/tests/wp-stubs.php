<?php
/**
 * Stand-ins for exactly the WordPress and WooCommerce functions and classes the plugin calls,
 * small enough to read: hooks that record and run callbacks, options in an array, the escaping
 * functions, a fake WC() with a cart, a session and products, fake webhooks. State lives in
 * $GLOBALS['pc'] and pc_reset() empties it (hooks included).
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || define( 'ABSPATH', __DIR__ . '/' );

/** What wp_die() throws. */
class PC_Die extends Exception {
	/** @var int */
	public $status;
	public function __construct( $message, $status = 500 ) {
		parent::__construct( (string) $message );
		$this->status = (int) $status;
	}
}

/** What wp_send_json() throws, instead of printing and dying. */
class PC_Json extends Exception {
	/** @var mixed */
	public $data;
	/** @var int */
	public $status;
	public function __construct( $data, $status ) {
		parent::__construct( 'json' );
		$this->data   = $data;
		$this->status = (int) $status;
	}
}

/** What wp_safe_redirect() throws, so the `exit` after it is never reached. */
class PC_Redirect extends Exception {
	/** @var string */
	public $location;
	public function __construct( $location ) {
		parent::__construct( 'redirect' );
		$this->location = $location;
	}
}

/**
 * Empties all recorded state.
 */
function pc_reset() {
	$GLOBALS['pc'] = array(
		'hooks'           => array(),
		'options'         => array(),
		'settings_errors' => array(),
		'scripts'         => array(),
		'inline'          => array(),
		'rewrite_rules'   => array(),
		'flushes'         => 0,
		'caps'            => array( 'manage_woocommerce' => true, 'manage_options' => true, 'activate_plugins' => true ),
		'user_id'         => 7,
		'is_admin'        => false,
		'is_checkout'     => false,
		'is_endpoint'     => false,
		'status'          => null,
		'sections'        => array(),
		'fields'          => array(),
		'menus'           => array(),
		'webhooks'        => array(),
		'next_webhook_id' => 100,
		'products'        => array(),
		'wc'              => null,
		'home'            => 'https://shop.example/',
		'http'            => array(),
		'http_response'   => null,
		'blogname'        => 'Pushcart Test Shop',
		'site_icon'       => null,
	);
	$GLOBALS['wp_rewrite'] = (object) array( 'extra_rules_top' => array() );
	$_COOKIE  = array();
	$_REQUEST = array();
	$_POST    = array();
	$_GET     = array();
	unset( $_SERVER['HTTP_X_REQUESTED_WITH'], $_SERVER['REQUEST_METHOD'], $_SERVER['REQUEST_URI'] );
	$GLOBALS['wp_version'] = '6.4.2';
}
pc_reset();

// ---- hooks -------------------------------------------------------------------------------------

function add_filter( $tag, $callback, $priority = 10, $accepted_args = 1 ) {
	$GLOBALS['pc']['hooks'][ $tag ][ $priority ][] = array( $callback, $accepted_args );
	return true;
}
function add_action( $tag, $callback, $priority = 10, $accepted_args = 1 ) {
	return add_filter( $tag, $callback, $priority, $accepted_args );
}
function pc_callbacks( $tag ) {
	$by_priority = isset( $GLOBALS['pc']['hooks'][ $tag ] ) ? $GLOBALS['pc']['hooks'][ $tag ] : array();
	ksort( $by_priority );
	$out = array();
	foreach ( $by_priority as $list ) {
		foreach ( $list as $entry ) {
			$out[] = $entry;
		}
	}
	return $out;
}
function apply_filters( $tag, $value, ...$args ) {
	foreach ( pc_callbacks( $tag ) as $entry ) {
		$value = call_user_func_array( $entry[0], array_slice( array_merge( array( $value ), $args ), 0, $entry[1] ) );
	}
	return $value;
}
function do_action( $tag, ...$args ) {
	foreach ( pc_callbacks( $tag ) as $entry ) {
		call_user_func_array( $entry[0], array_slice( $args, 0, $entry[1] ) );
	}
}
function has_action( $tag, $callback ) {
	foreach ( pc_callbacks( $tag ) as $entry ) {
		if ( $entry[0] === $callback ) {
			return true;
		}
	}
	return false;
}
function register_activation_hook( $file, $callback ) {
	$GLOBALS['pc_activation']['activate'] = $callback; // kept across pc_reset(): registered once, at include
}
function register_deactivation_hook( $file, $callback ) {
	$GLOBALS['pc_activation']['deactivate'] = $callback;
}

// ---- options and settings ----------------------------------------------------------------------

function get_option( $name, $default = false ) {
	return array_key_exists( $name, $GLOBALS['pc']['options'] ) ? $GLOBALS['pc']['options'][ $name ] : $default;
}
function update_option( $name, $value, $autoload = null ) {
	$value = apply_filters( 'sanitize_option_' . $name, $value, $name );
	$had   = array_key_exists( $name, $GLOBALS['pc']['options'] );
	$old   = $had ? $GLOBALS['pc']['options'][ $name ] : false;
	if ( $had && $old === $value ) {
		return false;
	}
	$GLOBALS['pc']['options'][ $name ] = $value;
	if ( $had ) {
		do_action( 'update_option_' . $name, $old, $value, $name );
	}
	return true;
}
function delete_option( $name ) {
	unset( $GLOBALS['pc']['options'][ $name ] );
	return true;
}
function register_setting( $group, $name, $args = array() ) {
	$GLOBALS['pc']['registered'][ $name ] = array( 'group' => $group ) + $args;
	if ( ! empty( $args['sanitize_callback'] ) ) {
		add_filter( 'sanitize_option_' . $name, $args['sanitize_callback'] );
	}
}
function add_settings_error( $setting, $code, $message, $type = 'error' ) {
	$GLOBALS['pc']['settings_errors'][] = compact( 'setting', 'code', 'message', 'type' );
}
function settings_errors( $setting = '' ) {}
function add_settings_section( $id, $title, $callback, $page ) {
	$GLOBALS['pc']['sections'][ $page ][ $id ] = array( $title, $callback );
}
function add_settings_field( $id, $title, $callback, $page, $section = 'default', $args = array() ) {
	$GLOBALS['pc']['fields'][ $page ][ $section ][ $id ] = array( $title, $callback, $args );
}
function settings_fields( $group ) {
	echo '<input type="hidden" name="option_page" value="' . esc_attr( $group ) . '" />';
	echo '<input type="hidden" name="action" value="update" />';
	wp_nonce_field( $group . '-options' );
}
function do_settings_sections( $page ) {
	foreach ( isset( $GLOBALS['pc']['sections'][ $page ] ) ? $GLOBALS['pc']['sections'][ $page ] : array() as $id => $section ) {
		echo '<h2>' . esc_html( $section[0] ) . '</h2>';
		call_user_func( $section[1] );
		foreach ( isset( $GLOBALS['pc']['fields'][ $page ][ $id ] ) ? $GLOBALS['pc']['fields'][ $page ][ $id ] : array() as $field ) {
			echo '<tr><th>' . esc_html( $field[0] ) . '</th><td>';
			call_user_func( $field[1], $field[2] );
			echo '</td></tr>';
		}
	}
}
function submit_button( $text = 'Save Changes', $type = 'primary', $name = 'submit', $wrap = true, $other = array() ) {
	$attrs = '';
	foreach ( (array) $other as $k => $v ) {
		$attrs .= ' ' . esc_attr( $k ) . '="' . esc_attr( $v ) . '"';
	}
	echo '<input type="submit" name="' . esc_attr( $name ) . '" class="button button-' . esc_attr( $type ) . '" value="' . esc_attr( $text ) . '"' . $attrs . ' />';
}
function add_submenu_page( $parent, $page_title, $menu_title, $capability, $slug, $callback ) {
	$GLOBALS['pc']['menus'][] = compact( 'parent', 'capability', 'slug', 'callback' );
}
function add_options_page( $page_title, $menu_title, $capability, $slug, $callback ) {
	add_submenu_page( 'options-general.php', $page_title, $menu_title, $capability, $slug, $callback );
}

// ---- users, nonces, requests -------------------------------------------------------------------

function current_user_can( $cap ) {
	return ! empty( $GLOBALS['pc']['caps'][ $cap ] );
}
function get_current_user_id() {
	return $GLOBALS['pc']['user_id'];
}
function is_admin() {
	return $GLOBALS['pc']['is_admin'];
}
function is_multisite() {
	return false;
}
function wp_create_nonce( $action ) {
	return 'nonce-' . $action;
}
function wp_verify_nonce( $nonce, $action ) {
	return $nonce === 'nonce-' . $action ? 1 : false;
}
function wp_nonce_field( $action ) {
	echo '<input type="hidden" name="_wpnonce" value="' . esc_attr( wp_create_nonce( $action ) ) . '" />';
}
function check_ajax_referer( $action, $arg = false, $die = true ) {
	$ok = isset( $_REQUEST[ $arg ] ) && wp_verify_nonce( $_REQUEST[ $arg ], $action );
	if ( ! $ok && $die ) {
		wp_die( '-1', 403 );
	}
	return $ok;
}
function check_admin_referer( $action ) {
	if ( ! isset( $_REQUEST['_wpnonce'] ) || ! wp_verify_nonce( $_REQUEST['_wpnonce'], $action ) ) {
		wp_die( 'The link you followed has expired.', 403 );
	}
	return 1;
}
function wp_die( $message = '', $status = 500 ) {
	throw new PC_Die( $message, is_array( $status ) ? 500 : $status );
}
function wp_send_json( $data, $status = 200 ) {
	throw new PC_Json( $data, $status );
}
function wp_send_json_error( $data = null, $status = 400 ) {
	throw new PC_Json( array( 'success' => false, 'data' => $data ), $status );
}
function wp_safe_redirect( $location ) {
	throw new PC_Redirect( $location );
}
function status_header( $code ) {
	$GLOBALS['pc']['status'] = $code;
}
function wp_unslash( $value ) {
	return is_array( $value ) ? array_map( 'wp_unslash', $value ) : stripslashes( (string) $value );
}

// ---- formatting and escaping (the behaviour WordPress documents) -------------------------------

function __( $text, $domain = 'default' ) {
	return $text;
}
function esc_html__( $text, $domain = 'default' ) {
	return esc_html( $text );
}
function esc_html( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}
function esc_attr( $text ) {
	return htmlspecialchars( (string) $text, ENT_QUOTES, 'UTF-8' );
}
function esc_url_raw( $url, $protocols = array( 'http', 'https' ) ) {
	$url    = trim( (string) $url );
	$scheme = strtolower( (string) parse_url( $url, PHP_URL_SCHEME ) );
	return in_array( $scheme, $protocols, true ) ? $url : '';
}
function esc_url( $url, $protocols = array( 'http', 'https' ) ) {
	$clean = esc_url_raw( $url, $protocols );
	return str_replace( array( '&', "'", '"', '<', '>' ), array( '&#038;', '&#039;', '&quot;', '', '' ), $clean );
}
function sanitize_key( $key ) {
	return preg_replace( '/[^a-z0-9_\-]/', '', strtolower( (string) $key ) );
}
function sanitize_text_field( $text ) {
	return trim( preg_replace( '/[\r\n\t ]+/', ' ', strip_tags( (string) $text ) ) );
}
function wp_strip_all_tags( $text ) {
	$text = preg_replace( '@<(script|style)[^>]*?>.*?</\\1>@si', '', (string) $text );
	return trim( strip_tags( $text ) );
}
function wp_parse_url( $url, $component = -1 ) {
	return parse_url( $url, $component );
}
function wp_json_encode( $data, $options = 0, $depth = 512 ) {
	return json_encode( $data, $options, $depth );
}
function home_url( $path = '' ) {
	return rtrim( $GLOBALS['pc']['home'], '/' ) . '/' . ltrim( $path, '/' );
}

// ---- HTTP: requests are recorded; the answer is what a test put in $GLOBALS['pc']['http_response'] ----

class WP_Error {
	public $message;
	public function __construct( $code = '', $message = '' ) {
		$this->message = $message;
	}
}
function is_wp_error( $thing ) {
	return $thing instanceof WP_Error;
}
function wp_remote_post( $url, $args = array() ) {
	$GLOBALS['pc']['http'][] = array( 'url' => $url, 'args' => $args );
	$response                = $GLOBALS['pc']['http_response'];
	return is_callable( $response ) ? $response( $url, $args ) : ( null === $response ? new WP_Error( 'http_request_failed', 'no answer' ) : $response );
}
function wp_remote_get( $url, $args = array() ) {
	return wp_remote_post( $url, $args + array( 'method' => 'GET' ) );
}
function wp_remote_retrieve_header( $response, $header ) {
	return is_array( $response ) && isset( $response['headers'][ strtolower( $header ) ] ) ? $response['headers'][ strtolower( $header ) ] : '';
}
function wp_remote_retrieve_response_code( $response ) {
	return is_array( $response ) && isset( $response['response']['code'] ) ? $response['response']['code'] : '';
}
function wp_remote_retrieve_body( $response ) {
	return is_array( $response ) && isset( $response['body'] ) ? $response['body'] : '';
}
function admin_url( $path = '' ) {
	return 'https://shop.example/wp-admin/' . ltrim( $path, '/' );
}
function add_query_arg( $key, $value, $url ) {
	return $url . ( false === strpos( $url, '?' ) ? '?' : '&' ) . rawurlencode( $key ) . '=' . rawurlencode( $value );
}
function checked( $checked, $current = true, $display = true ) {
	$out = (string) $checked === (string) $current ? " checked='checked'" : '';
	if ( $display ) {
		echo $out;
	}
	return $out;
}
function get_bloginfo( $show = '' ) {
	return 'name' === $show ? htmlspecialchars( $GLOBALS['pc']['blogname'], ENT_QUOTES ) : '';
}
function wp_specialchars_decode( $text, $quote_style = ENT_NOQUOTES ) {
	return htmlspecialchars_decode( $text, $quote_style );
}
function sanitize_hex_color( $color ) {
	return preg_match( '|^#([A-Fa-f0-9]{3}){1,2}$|', $color ) ? $color : null;
}
function has_site_icon() {
	return null !== $GLOBALS['pc']['site_icon'];
}
function get_site_icon_url( $size = 512 ) {
	return has_site_icon() ? 'https://shop.example/wp-content/uploads/icon-' . $size . 'x' . $size . '.png' : '';
}
function get_post_mime_type( $post = null ) {
	return has_site_icon() ? 'image/png' : false;
}
function plugin_basename( $file ) {
	return basename( dirname( $file ) ) . '/' . basename( $file );
}
function plugins_url( $path, $file ) {
	return 'https://shop.example/wp-content/plugins/' . basename( dirname( $file ) ) . '/' . ltrim( $path, '/' );
}

// ---- scripts and rewrites ----------------------------------------------------------------------

function wp_enqueue_script( $handle, $src = '', $deps = array(), $ver = false, $args = array() ) {
	$GLOBALS['pc']['scripts'][ $handle ] = compact( 'src', 'deps', 'ver', 'args' );
}
function wp_add_inline_script( $handle, $data, $position = 'after' ) {
	$GLOBALS['pc']['inline'][ $handle ][ $position ][] = $data;
	return true;
}
function wp_print_inline_script_tag( $data, $attributes = array() ) {
	$attrs = '';
	foreach ( $attributes as $k => $v ) {
		$attrs .= ' ' . $k . '="' . esc_attr( $v ) . '"';
	}
	echo '<script' . $attrs . '>' . $data . "</script>\n";
}
function add_rewrite_rule( $regex, $query, $after = 'bottom' ) {
	$GLOBALS['wp_rewrite']->extra_rules_top[ $regex ] = $query;
}
function flush_rewrite_rules( $hard = true ) {
	$GLOBALS['pc']['flushes']++;
	$GLOBALS['pc']['rewrite_rules'] = $GLOBALS['wp_rewrite']->extra_rules_top;
}

// ---- WooCommerce -------------------------------------------------------------------------------

class WooCommerce {
	public $cart;
	public $session;
}

class PC_Session {
	public $data = array();
	public function get( $key, $default = null ) {
		return array_key_exists( $key, $this->data ) ? $this->data[ $key ] : $default;
	}
	public function set( $key, $value ) {
		if ( null === $value ) {
			unset( $this->data[ $key ] );
		} else {
			$this->data[ $key ] = $value;
		}
	}
}

class PC_Product {
	public $id;
	public $name;
	public $price;
	public $permalink;
	public $image_id;
	public function __construct( $id, $name, $price, $permalink, $image_id = 0 ) {
		$this->id        = $id;
		$this->name      = $name;
		$this->price     = $price;
		$this->permalink = $permalink;
		$this->image_id  = $image_id;
	}
	public function get_id() {
		return $this->id;
	}
	public function get_name() {
		return $this->name;
	}
	public function get_permalink() {
		return $this->permalink;
	}
	public function get_image_id() {
		return $this->image_id;
	}
}

class PC_Cart {
	public $cart_contents         = array();
	public $removed_cart_contents = array();
	public $total                 = 0;
	public function get_cart() {
		return $this->cart_contents;
	}
	public function get_total( $context = 'view' ) {
		return 'edit' === $context ? $this->total : '<span>' . $this->total . '</span>';
	}
	public function get_cart_contents_count() {
		$n = 0;
		foreach ( $this->cart_contents as $line ) {
			$n += $line['quantity'];
		}
		return $n;
	}
	public function is_empty() {
		return ! $this->cart_contents;
	}
}

class PC_Order {
	public $meta = array();
	public function update_meta_data( $key, $value ) {
		$this->meta[ $key ] = $value;
	}
}

function WC() { // phpcs:ignore WordPress.NamingConventions.ValidFunctionName -- WooCommerce's own name.
	return $GLOBALS['pc']['wc'];
}
function get_woocommerce_currency() {
	return 'EUR';
}
function wc_get_checkout_url() {
	return 'https://shop.example/checkout/';
}
function wc_get_price_to_display( $product ) {
	return $product->price;
}
function wc_get_product( $id ) {
	return isset( $GLOBALS['pc']['products'][ $id ] ) ? $GLOBALS['pc']['products'][ $id ] : false;
}
function wp_get_attachment_image_url( $id, $size ) {
	return 'https://shop.example/wp-content/uploads/' . $id . '-' . $size . '.jpg';
}
function is_checkout() {
	return $GLOBALS['pc']['is_checkout'];
}
function is_wc_endpoint_url( $endpoint = false ) {
	return $GLOBALS['pc']['is_endpoint'];
}

class WC_AJAX {
	public static function get_endpoint( $request = '' ) {
		return '/?wc-ajax=' . rawurlencode( $request );
	}
}

class WC_Webhook {
	public $id = 0;
	public $props = array( 'status' => 'disabled', 'failure_count' => 0 );
	public function __call( $name, $args ) {
		if ( 0 === strpos( $name, 'set_' ) ) {
			$this->props[ substr( $name, 4 ) ] = $args[0];
			return null;
		}
		if ( 0 === strpos( $name, 'get_' ) ) {
			$prop = substr( $name, 4 );
			return isset( $this->props[ $prop ] ) ? $this->props[ $prop ] : null;
		}
		throw new BadMethodCallException( $name );
	}
	public function save() {
		if ( ! $this->id ) {
			$this->id = $GLOBALS['pc']['next_webhook_id']++;
		}
		$GLOBALS['pc']['webhooks'][ $this->id ] = $this;
		return $this->id;
	}
	public function delete( $force = false ) {
		unset( $GLOBALS['pc']['webhooks'][ $this->id ] );
		return true;
	}
}
function wc_get_webhook( $id ) {
	return isset( $GLOBALS['pc']['webhooks'][ (int) $id ] ) ? $GLOBALS['pc']['webhooks'][ (int) $id ] : null;
}
