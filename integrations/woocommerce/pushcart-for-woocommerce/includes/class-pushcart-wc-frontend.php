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
		return is_object( $wp ) && ! empty( $wp->query_vars[ self::QUERY_VAR ] );
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
			array(
				'strategy'  => 'async',
				'in_footer' => false,
			)
		);
		if ( ! function_exists( 'WC' ) ) {
			return;
		}
		wp_enqueue_script(
			self::SCRIPT_HANDLE,
			plugins_url( 'assets/pushcart-wc.js', PUSHCART_WC_FILE ),
			array(),
			PUSHCART_WC_VERSION,
			array(
				'strategy'  => 'defer',
				'in_footer' => true,
			)
		);
		$config = array(
			'events' => class_exists( 'WC_AJAX' ) ? WC_AJAX::get_endpoint( self::AJAX_ACTION ) : '',
			'nonce'  => wp_create_nonce( self::NONCE_ACTION ),
		);
		wp_add_inline_script( self::SCRIPT_HANDLE, 'window.pushcartWc=' . wp_json_encode( $config, Pushcart_WC_Cart_Events::json_flags() ) . ';', 'before' );
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
