<?php
/**
 * What the shop's visitors get: the widget's script tag, the service worker file at
 * /pushcart-sw.js, the queued cart events in the footer, and the endpoint that hands them
 * over after an AJAX cart change.
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Front-end output.
 */
final class Pushcart_WC_Frontend {

	const WIDGET_HANDLE = 'pushcart-widget';
	const SCRIPT_HANDLE = 'pushcart-wc';
	const QUERY_VAR     = 'pushcart_sw';
	const SW_REGEX      = '^pushcart-sw\.js$';
	const FILE          = 'pushcart-sw.js';
	const AJAX_ACTION   = 'pushcart_events';
	const NONCE_ACTION  = 'pushcart_wc_events';

	/** @var Pushcart_WC_Cart_Events */
	private $events;

	/**
	 * @param Pushcart_WC_Cart_Events $events The queue the footer and the endpoint drain.
	 */
	public function __construct( Pushcart_WC_Cart_Events $events ) {
		$this->events = $events;
	}

	/**
	 * Registers the front-end hooks.
	 */
	public function hook() {
		add_action( 'init', array( __CLASS__, 'add_rewrite_rule' ) );
		add_filter( 'query_vars', array( __CLASS__, 'query_vars' ) );
		add_action( 'parse_request', array( $this, 'maybe_serve_service_worker' ), 0 );
		add_action( 'wp_enqueue_scripts', array( $this, 'enqueue' ) );
		add_filter( 'script_loader_tag', array( __CLASS__, 'script_tag' ), 10, 3 );
		add_action( 'wp_footer', array( $this, 'print_events' ), 25 );
		add_action( 'wc_ajax_' . self::AJAX_ACTION, array( $this, 'ajax_events' ) );
	}

	// ---- the service worker file ---------------------------------------------------------------

	/**
	 * Maps /pushcart-sw.js to the plugin's query var.
	 */
	public static function add_rewrite_rule() {
		add_rewrite_rule( self::SW_REGEX, 'index.php?' . self::QUERY_VAR . '=1', 'top' );
	}

	/**
	 * Takes the rule out of this request's rewrite rules (for deactivation).
	 */
	public static function remove_rewrite_rule() {
		global $wp_rewrite;
		if ( is_object( $wp_rewrite ) && isset( $wp_rewrite->extra_rules_top[ self::SW_REGEX ] ) ) {
			unset( $wp_rewrite->extra_rules_top[ self::SW_REGEX ] );
		}
	}

	/**
	 * `query_vars`: lets WordPress keep the plugin's query var.
	 *
	 * @param string[] $vars The public query vars.
	 * @return string[]
	 */
	public static function query_vars( $vars ) {
		$vars[] = self::QUERY_VAR;
		return $vars;
	}

	/**
	 * `parse_request`: answers /pushcart-sw.js before WordPress looks for a post (and before
	 * redirect_canonical could add a trailing slash). The widget adds ?shop=...&v=... to the
	 * worker's URL; the rewrite rule ignores query strings, so those still arrive here.
	 *
	 * @param object $wp The WP object.
	 */
	public function maybe_serve_service_worker( $wp ) {
		if ( ! self::is_service_worker_request( $wp ) ) {
			return;
		}
		$response = self::service_worker_response();
		status_header( $response['status'] );
		foreach ( $response['headers'] as $name => $value ) {
			header( $name . ': ' . $value );
		}
		echo $response['body']; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- JavaScript built by service_worker_body(), its URL JSON-encoded.
		exit;
	}

	/**
	 * Whether this request is the one for the service worker file.
	 *
	 * @param object $wp The WP object.
	 * @return bool
	 */
	public static function is_service_worker_request( $wp ) {
		if ( is_object( $wp ) && ! empty( $wp->query_vars[ self::QUERY_VAR ] ) ) {
			return true;
		}
		// Plain permalinks have no rewrite rules: WordPress would answer a 404 and
		// redirect_canonical a 301 to a guessed post. The path itself says what is asked.
		$uri = isset( $_SERVER['REQUEST_URI'] ) ? wp_unslash( $_SERVER['REQUEST_URI'] ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- only compared.
		return is_string( $uri ) && self::is_worker_path( $uri );
	}

	/**
	 * Whether a request URI asks for the worker file: the home URL's path plus
	 * `pushcart-sw.js`, whatever the query string (the widget adds ?shop=...&v=...).
	 *
	 * @param string $uri The request URI (path and query).
	 * @return bool
	 */
	public static function is_worker_path( $uri ) {
		$path = wp_parse_url( $uri, PHP_URL_PATH );
		$home = wp_parse_url( home_url( '/' ), PHP_URL_PATH );
		$home = is_string( $home ) ? '/' . trim( $home, '/' ) : '/';
		return is_string( $path ) && rtrim( $home, '/' ) . '/' . self::FILE === $path;
	}

	/**
	 * The worker file's public URL on this site.
	 *
	 * @return string
	 */
	public static function worker_url() {
		return home_url( '/' . self::FILE );
	}

	/**
	 * Fetches the worker file from this site as a browser would (no redirects followed) and
	 * says what stops it from registering, for the settings page.
	 *
	 * @return array{ok: bool, message: string}
	 */
	public static function check_worker() {
		$url      = self::worker_url();
		$response = wp_remote_get(
			$url,
			array(
				'timeout'     => 10,
				'redirection' => 0,
				// What WordPress's own loopback checks do: a local certificate may be self-signed.
				'sslverify'   => apply_filters( 'https_local_ssl_verify', false ),
			)
		);
		if ( is_wp_error( $response ) ) {
			/* translators: %s: the worker file's URL */
			return self::check_result( false, sprintf( __( 'This site could not fetch its own %s: the server may block requests to itself. Open the address in a browser: it must show one line of JavaScript.', 'pushcart-for-woocommerce' ), $url ) );
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$type   = (string) wp_remote_retrieve_header( $response, 'content-type' );
		if ( $status >= 300 && $status < 400 ) {
			/* translators: 1: the worker file's URL, 2: HTTP status, 3: where it redirects */
			return self::check_result( false, sprintf( __( '%1$s answers a redirect (%2$d to %3$s): browsers refuse a redirected service worker. Check Settings → Permalinks and any redirect rule or plugin that catches .js addresses.', 'pushcart-for-woocommerce' ), $url, $status, (string) wp_remote_retrieve_header( $response, 'location' ) ) );
		}
		if ( 404 === $status && ! Pushcart_WC_Settings::get( 'url' ) ) {
			return self::check_result( false, __( 'The worker file is served once the Pushcart URL is saved.', 'pushcart-for-woocommerce' ) );
		}
		if ( 200 !== $status ) {
			/* translators: 1: the worker file's URL, 2: HTTP status */
			return self::check_result( false, sprintf( __( '%1$s answers HTTP %2$d: the web server does not pass it to WordPress. Turn on pretty permalinks (Settings → Permalinks, anything but "Plain"), or add a rule that sends /pushcart-sw.js to index.php.', 'pushcart-for-woocommerce' ), $url, $status ) );
		}
		if ( 0 !== strpos( strtolower( $type ), 'application/javascript' ) || false === strpos( (string) wp_remote_retrieve_body( $response ), 'importScripts(' ) ) {
			/* translators: 1: the worker file's URL, 2: its content type */
			return self::check_result( false, sprintf( __( '%1$s is not the Pushcart worker (Content-Type "%2$s"): a cache or another plugin answers it. Exclude /pushcart-sw.js from page caching.', 'pushcart-for-woocommerce' ), $url, $type ) );
		}
		/* translators: %s: the worker file's URL */
		return self::check_result( true, sprintf( __( '%s is served as JavaScript, without redirects.', 'pushcart-for-woocommerce' ), $url ) );
	}

	/**
	 * One check's outcome.
	 *
	 * @param bool   $ok      Whether the check passed.
	 * @param string $message What to tell the merchant.
	 * @return array{ok: bool, message: string}
	 */
	private static function check_result( $ok, $message ) {
		return array(
			'ok'      => $ok,
			'message' => $message,
		);
	}

	/**
	 * The answer for /pushcart-sw.js: status, headers and body. A 404 until the URL is set,
	 * so that no browser installs a worker that cannot load Pushcart's.
	 *
	 * @return array{status: int, headers: array<string, string>, body: string}
	 */
	public static function service_worker_response() {
		$url = Pushcart_WC_Settings::get( 'url' );
		if ( '' === $url ) {
			return array(
				'status'  => 404,
				'headers' => array(
					'Content-Type'  => 'text/plain; charset=utf-8',
					'Cache-Control' => 'no-store',
				),
				'body'    => 'Pushcart is not set up yet.',
			);
		}
		return array(
			'status'  => 200,
			'headers' => array(
				'Content-Type'           => 'application/javascript; charset=utf-8',
				// Browsers check a worker for updates at least daily anyway; an hour keeps a changed URL quick to reach them.
				'Cache-Control'          => 'public, max-age=3600',
				'X-Content-Type-Options' => 'nosniff',
				'X-Robots-Tag'           => 'noindex',
			),
			'body'    => self::service_worker_body( $url ),
		);
	}

	/**
	 * The worker file's body: `importScripts("<url>/sw.js");`, the URL as a JSON string.
	 *
	 * @param string $url The Pushcart URL (already sanitized).
	 * @return string
	 */
	public static function service_worker_body( $url ) {
		return 'importScripts(' . wp_json_encode( $url . '/sw.js', Pushcart_WC_Cart_Events::json_flags() ) . ');';
	}

	// ---- scripts -------------------------------------------------------------------------------

	/**
	 * `wp_enqueue_scripts`: the widget (async, in the head) on every front-end page, and the
	 * plugin's small script (footer) that links the visitor id and fetches AJAX cart events.
	 */
	public function enqueue() {
		if ( is_admin() || ! Pushcart_WC_Settings::is_configured() ) {
			return;
		}
		wp_enqueue_script(
			self::WIDGET_HANDLE,
			Pushcart_WC_Settings::get( 'url' ) . '/widget.js',
			array(),
			null, // No ?ver=: the widget is versioned by the Pushcart server that serves it.
			self::script_args( 'async', false )
		);
		if ( ! function_exists( 'WC' ) ) {
			return;
		}
		wp_enqueue_script(
			self::SCRIPT_HANDLE,
			plugins_url( 'assets/pushcart-wc.js', PUSHCART_WC_FILE ),
			array(),
			PUSHCART_WC_VERSION,
			self::script_args( 'defer', true )
		);
		$config = array(
			'events' => class_exists( 'WC_AJAX' ) ? WC_AJAX::get_endpoint( self::AJAX_ACTION ) : '',
			'nonce'  => wp_create_nonce( self::NONCE_ACTION ),
		);
		wp_add_inline_script( self::SCRIPT_HANDLE, 'window.pushcartWc=' . wp_json_encode( $config, Pushcart_WC_Cart_Events::json_flags() ) . ';', 'before' );
	}

	/**
	 * wp_enqueue_script's last argument: a loading strategy from WordPress 6.3, before that a
	 * bare in_footer flag (an array there would read as "in the footer"; the tag filter below
	 * adds async to the widget's tag itself).
	 *
	 * @param string $strategy  async or defer.
	 * @param bool   $in_footer Whether the script goes in the footer.
	 * @return array|bool
	 */
	public static function script_args( $strategy, $in_footer ) {
		global $wp_version;
		if ( is_string( $wp_version ) && version_compare( $wp_version, '6.3', '<' ) ) {
			return $in_footer;
		}
		return array(
			'strategy'  => $strategy,
			'in_footer' => $in_footer,
		);
	}

	/**
	 * `script_loader_tag`: the widget's tag as CONTRACT §4 has it, with data-shop and async.
	 * Other attributes (an id, a CSP nonce another plugin adds) are kept.
	 *
	 * @param string $tag    The tag WordPress built.
	 * @param string $handle The script handle.
	 * @param string $src    The script URL.
	 * @return string
	 */
	public static function script_tag( $tag, $handle, $src = '' ) {
		if ( self::WIDGET_HANDLE !== $handle ) {
			return $tag;
		}
		$key = Pushcart_WC_Settings::get( 'public_key' );
		if ( '' === $key || false !== strpos( $tag, ' data-shop=' ) ) {
			return $tag;
		}
		$extra = ' data-shop="' . esc_attr( $key ) . '"';
		if ( ! preg_match( '/<script\b[^>]*\sasync[\s>=]/i', $tag ) ) {
			$extra .= ' async';
		}
		return preg_replace( '/<script\b([^>]*?)(\s*\/?)>/i', '<script$1' . $extra . '$2>', $tag, 1 );
	}

	// ---- handing over the queued events --------------------------------------------------------

	/**
	 * `wp_footer`: the queued cart events as widget calls. Not on the XHR reloads that the cart
	 * page and some themes make (their scripts never run): the events then wait for the
	 * endpoint or the next full page.
	 */
	public function print_events() {
		if ( ! Pushcart_WC_Settings::is_configured() || self::is_xhr() ) {
			return;
		}
		$script = Pushcart_WC_Cart_Events::calls_script( $this->events->drain_calls() );
		if ( '' === $script ) {
			return;
		}
		// The page now holds this visitor's cart: page caches that honour this must not keep it.
		if ( ! defined( 'DONOTCACHEPAGE' ) ) {
			define( 'DONOTCACHEPAGE', true );
		}
		if ( function_exists( 'wp_print_inline_script_tag' ) ) {
			wp_print_inline_script_tag( $script, array( 'id' => 'pushcart-wc-events' ) );
		} else {
			echo '<script id="pushcart-wc-events">' . $script . "</script>\n"; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- JSON with JSON_HEX_TAG and friends.
		}
	}

	/**
	 * `wc_ajax_pushcart_events` (POST, nonce): the queued events as `{"calls": [...]}`, taken
	 * out of the session. Only the caller's own session is read; nothing else changes.
	 */
	public function ajax_events() {
		if ( ! check_ajax_referer( self::NONCE_ACTION, 'nonce', false ) ) {
			wp_send_json_error( array( 'code' => 'bad_nonce' ), 403 );
		}
		if ( ! isset( $_SERVER['REQUEST_METHOD'] ) || 'POST' !== $_SERVER['REQUEST_METHOD'] ) {
			wp_send_json_error( array( 'code' => 'method_not_allowed' ), 405 );
		}
		$calls = Pushcart_WC_Settings::is_configured() ? $this->events->drain_calls() : array();
		wp_send_json( array( 'calls' => $calls ) );
	}

	/**
	 * Whether the page is being fetched by a script (jQuery's XHR header).
	 *
	 * @return bool
	 */
	private static function is_xhr() {
		return isset( $_SERVER['HTTP_X_REQUESTED_WITH'] ) && 'xmlhttprequest' === strtolower( sanitize_text_field( wp_unslash( $_SERVER['HTTP_X_REQUESTED_WITH'] ) ) );
	}
}
