<?php
/**
 * A web app manifest for a site whose pages link none: iPhones and iPads deliver web push only
 * to a site added to the Home Screen, and Safari makes a Home Screen app only of a site whose
 * manifest asks for its own window (`display: standalone`). Most WordPress themes link none.
 *
 * The manifest is served at /pushcart-manifest.webmanifest (pretty permalinks) and at
 * /?pushcart_manifest=1 (plain ones), and linked in wp_head unless the page already links one:
 * the plugin reads what wp_head prints, and a theme that prints its own link elsewhere says so
 * with the `pushcart_wc_site_has_manifest` filter, or the merchant turns the setting off.
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * The manifest, its URL and its link.
 */
final class Pushcart_WC_Manifest {

	const OPTION    = 'pushcart_wc_manifest';
	const QUERY_VAR = 'pushcart_manifest';
	const REGEX     = '^pushcart-manifest\.webmanifest$';
	const FILE      = 'pushcart-manifest.webmanifest';

	/** What a Home Screen label shows without cutting. */
	const SHORT_NAME = 12;

	/** The Site Icon sizes a manifest should offer (WordPress crops the icon to 512 px). */
	const ICON_SIZES = array( 192, 512 );

	/** Any `<link rel="... manifest ...">` (attribute order and quoting as HTML allows). */
	const LINK_PATTERN = '/<link\b[^>]*\brel\s*=\s*(["\']?)[^"\'>]*\bmanifest\b/i';

	/**
	 * The output buffer level wp_head's reading started at, or null when it is not reading.
	 *
	 * @var int|null
	 */
	private static $buffer_level = null;

	/**
	 * Registers the manifest's hooks.
	 */
	public static function hook() {
		add_action( 'init', array( __CLASS__, 'add_rewrite_rule' ) );
		add_action( 'admin_init', array( __CLASS__, 'register' ) );
		add_filter( 'query_vars', array( __CLASS__, 'query_vars' ) );
		add_action( 'parse_request', array( __CLASS__, 'maybe_serve' ), 0 );
		// Around everything else wp_head prints: what a theme or another plugin links is read there.
		add_action( 'wp_head', array( __CLASS__, 'start_reading_head' ), PHP_INT_MIN );
		add_action( 'wp_head', array( __CLASS__, 'link' ), PHP_INT_MAX );
	}

	// ---- the setting ---------------------------------------------------------------------------

	/**
	 * The setting, saved by the plugin's page with the connection settings.
	 */
	public static function register() {
		register_setting(
			Pushcart_WC_Settings::GROUP,
			self::OPTION,
			array(
				'type'              => 'array',
				'sanitize_callback' => array( __CLASS__, 'sanitize' ),
				'default'           => self::defaults(),
				'show_in_rest'      => false,
			)
		);
	}

	/**
	 * On by default, with a white theme colour.
	 *
	 * @return array{enabled: bool, theme_color: string}
	 */
	public static function defaults() {
		return array(
			'enabled'     => true,
			'theme_color' => '#ffffff',
		);
	}

	/**
	 * The stored setting, or one of its values.
	 *
	 * @param string|null $key enabled or theme_color; null for both.
	 * @return array|bool|string
	 */
	public static function get( $key = null ) {
		$stored = get_option( self::OPTION, array() );
		$out    = self::defaults();
		if ( is_array( $stored ) ) {
			if ( isset( $stored['enabled'] ) ) {
				$out['enabled'] = (bool) $stored['enabled'];
			}
			if ( isset( $stored['theme_color'] ) && is_string( $stored['theme_color'] ) && preg_match( '/^#[0-9a-f]{6}$/', $stored['theme_color'] ) ) {
				$out['theme_color'] = $stored['theme_color'];
			}
		}
		return null === $key ? $out : $out[ $key ];
	}

	/**
	 * The sanitize callback: the form sends `form` always and `enabled` only when ticked; a bad
	 * colour keeps the stored one.
	 *
	 * @param mixed $input The submitted option value.
	 * @return array{enabled: bool, theme_color: string}
	 */
	public static function sanitize( $input ) {
		$out = self::get();
		if ( ! is_array( $input ) ) {
			return $out;
		}
		if ( isset( $input['form'] ) || array_key_exists( 'enabled', $input ) ) {
			$out['enabled'] = ! empty( $input['enabled'] );
		}
		if ( isset( $input['theme_color'] ) && is_string( $input['theme_color'] ) ) {
			$color = sanitize_hex_color( strtolower( trim( $input['theme_color'] ) ) );
			if ( is_string( $color ) && preg_match( '/^#[0-9a-f]{6}$/', $color ) ) {
				$out['theme_color'] = $color;
			} else {
				add_settings_error( Pushcart_WC_Settings::OPTION, 'pushcart_theme_color', __( 'The theme colour must be a colour like #1f6feb. The previous colour was kept.', 'pushcart-for-woocommerce' ) );
			}
		}
		return $out;
	}

	// ---- the file ------------------------------------------------------------------------------

	/**
	 * Maps /pushcart-manifest.webmanifest to the plugin's query var.
	 */
	public static function add_rewrite_rule() {
		add_rewrite_rule( self::REGEX, 'index.php?' . self::QUERY_VAR . '=1', 'top' );
	}

	/**
	 * Takes the rule out of this request's rewrite rules (for deactivation).
	 */
	public static function remove_rewrite_rule() {
		global $wp_rewrite;
		if ( is_object( $wp_rewrite ) && isset( $wp_rewrite->extra_rules_top[ self::REGEX ] ) ) {
			unset( $wp_rewrite->extra_rules_top[ self::REGEX ] );
		}
	}

	/**
	 * `query_vars`: lets WordPress keep ?pushcart_manifest=1 (plain permalinks use it).
	 *
	 * @param string[] $vars The public query vars.
	 * @return string[]
	 */
	public static function query_vars( $vars ) {
		$vars[] = self::QUERY_VAR;
		return $vars;
	}

	/**
	 * The manifest's URL on this site: the file name with pretty permalinks, the query var with
	 * plain ones (a web server then passes only index.php's addresses to WordPress).
	 *
	 * @return string
	 */
	public static function url() {
		if ( '' === (string) get_option( 'permalink_structure' ) ) {
			return add_query_arg( self::QUERY_VAR, '1', home_url( '/' ) );
		}
		return home_url( '/' . self::FILE );
	}

	/**
	 * Whether this request asks for the manifest: the query var (the rewrite rule or plain
	 * permalinks) or the path itself (a web server that sends every address to index.php).
	 *
	 * @param object $wp The WP object.
	 * @return bool
	 */
	public static function is_request( $wp ) {
		if ( is_object( $wp ) && ! empty( $wp->query_vars[ self::QUERY_VAR ] ) ) {
			return true;
		}
		$uri  = isset( $_SERVER['REQUEST_URI'] ) ? wp_unslash( $_SERVER['REQUEST_URI'] ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- only compared.
		$path = is_string( $uri ) ? wp_parse_url( $uri, PHP_URL_PATH ) : null;
		$home = wp_parse_url( home_url( '/' ), PHP_URL_PATH );
		$home = is_string( $home ) ? '/' . trim( $home, '/' ) : '/';
		return is_string( $path ) && rtrim( $home, '/' ) . '/' . self::FILE === $path;
	}

	/**
	 * `parse_request`: answers the manifest's address before WordPress looks for a post. A 404
	 * when the setting is off.
	 *
	 * @param object $wp The WP object.
	 */
	public static function maybe_serve( $wp ) {
		if ( ! self::is_request( $wp ) ) {
			return;
		}
		if ( ! self::get( 'enabled' ) ) {
			status_header( 404 );
			header( 'Content-Type: text/plain; charset=utf-8' );
			header( 'Cache-Control: no-store' );
			echo 'No manifest here.';
			exit;
		}
		status_header( 200 );
		header( 'Content-Type: application/manifest+json; charset=utf-8' );
		header( 'Cache-Control: public, max-age=3600' );
		header( 'X-Content-Type-Options: nosniff' );
		header( 'X-Robots-Tag: noindex' );
		echo wp_json_encode( self::manifest(), JSON_UNESCAPED_SLASHES | JSON_UNESCAPED_UNICODE ); // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- JSON served as JSON.
		exit;
	}

	/**
	 * The manifest: the site title as name, the home page as start, its own window, the theme
	 * colour of the setting and the Site Icon at 192 and 512 px when one is set. Themes change it
	 * with the `pushcart_wc_manifest` filter.
	 *
	 * @return array
	 */
	public static function manifest() {
		$name = trim( wp_specialchars_decode( (string) get_bloginfo( 'name' ), ENT_QUOTES ) );
		if ( '' === $name ) {
			$name = (string) wp_parse_url( home_url( '/' ), PHP_URL_HOST );
		}
		$scope    = wp_parse_url( home_url( '/' ), PHP_URL_PATH );
		$manifest = array(
			'name'             => $name,
			'short_name'       => self::short_name( $name ),
			'start_url'        => home_url( '/' ),
			'scope'            => is_string( $scope ) ? $scope : '/',
			'display'          => 'standalone',
			'background_color' => '#ffffff',
			'theme_color'      => self::get( 'theme_color' ),
		);
		$icons = self::icons();
		if ( $icons ) {
			$manifest['icons'] = $icons;
		}
		/**
		 * Filters the web app manifest the plugin serves.
		 *
		 * @param array $manifest The manifest's members.
		 */
		return apply_filters( 'pushcart_wc_manifest', $manifest );
	}

	/**
	 * The name cut to SHORT_NAME characters, at a word's end where it has one.
	 *
	 * @param string $name The site title.
	 * @return string
	 */
	public static function short_name( $name ) {
		if ( self::length( $name ) <= self::SHORT_NAME ) {
			return $name;
		}
		$cut = self::cut( $name, self::SHORT_NAME + 1 );
		$end = strrpos( $cut, ' ' );
		$cut = false === $end ? '' : trim( substr( $cut, 0, $end ) );
		return '' !== $cut ? $cut : trim( self::cut( $name, self::SHORT_NAME ) );
	}

	/**
	 * @param string $text A UTF-8 string.
	 * @return int Its length in characters.
	 */
	private static function length( $text ) {
		return function_exists( 'mb_strlen' ) ? mb_strlen( $text, 'UTF-8' ) : strlen( $text );
	}

	/**
	 * @param string $text  A UTF-8 string.
	 * @param int    $chars How many characters to keep.
	 * @return string
	 */
	private static function cut( $text, $chars ) {
		return function_exists( 'mb_substr' ) ? mb_substr( $text, 0, $chars, 'UTF-8' ) : substr( $text, 0, $chars );
	}

	/**
	 * The Site Icon (Settings → General, or the Customizer) at 192 and 512 px, when one is set.
	 *
	 * @return array[]
	 */
	public static function icons() {
		if ( ! function_exists( 'has_site_icon' ) || ! has_site_icon() ) {
			return array();
		}
		$type  = get_post_mime_type( (int) get_option( 'site_icon' ) );
		$icons = array();
		foreach ( self::ICON_SIZES as $size ) {
			$url = get_site_icon_url( $size );
			if ( '' === $url ) {
				continue;
			}
			$icon = array(
				'src'   => $url,
				'sizes' => $size . 'x' . $size,
			);
			if ( is_string( $type ) && 0 === strpos( $type, 'image/' ) ) {
				$icon['type'] = $type;
			}
			$icons[] = $icon;
		}
		return $icons;
	}

	// ---- the link ------------------------------------------------------------------------------

	/**
	 * `wp_head`, first: start reading what the head prints, to see whether it links a manifest.
	 */
	public static function start_reading_head() {
		if ( self::wanted() && ob_start() ) {
			self::$buffer_level = ob_get_level();
		}
	}

	/**
	 * `wp_head`, last: print what the head printed, then the plugin's link if it holds none.
	 */
	public static function link() {
		if ( ! self::wanted() ) {
			return;
		}
		$head = '';
		if ( null !== self::$buffer_level && ob_get_level() === self::$buffer_level ) {
			$head = (string) ob_get_clean();
			echo $head; // phpcs:ignore WordPress.Security.EscapeOutput.OutputNotEscaped -- what other callbacks printed, passed on unchanged.
		}
		self::$buffer_level = null;
		if ( preg_match( self::LINK_PATTERN, $head ) ) {
			return;
		}
		echo '<link rel="manifest" href="' . esc_url( self::url() ) . '" id="pushcart-wc-manifest" />' . "\n";
	}

	/**
	 * Whether to link the plugin's manifest on this page: the setting is on, the widget is set
	 * up, and neither the filter nor a known PWA plugin says the site has a manifest of its own.
	 *
	 * @return bool
	 */
	public static function wanted() {
		if ( is_admin() || ! self::get( 'enabled' ) || ! Pushcart_WC_Settings::is_configured() ) {
			return false;
		}
		// The PWA feature plugin and SuperPWA link a manifest of their own on every page.
		$known = class_exists( 'WP_Web_App_Manifest' ) || defined( 'SUPERPWA_VERSION' );
		/**
		 * Filters whether the site's pages link a web app manifest of their own (a theme that
		 * prints one outside wp_head returns true): the plugin then links none.
		 *
		 * @param bool $has_manifest Whether a known PWA plugin is active.
		 */
		return ! apply_filters( 'pushcart_wc_site_has_manifest', $known );
	}
}
