<?php
/**
 * The plugin's settings: one option holding the Pushcart URL, the shop's public key and the
 * webhook secret, with the sanitizing that register_setting applies on every save.
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Reads and sanitizes the `pushcart_wc_settings` option.
 */
final class Pushcart_WC_Settings {

	const OPTION = 'pushcart_wc_settings';
	const GROUP  = 'pushcart_wc';
	const PAGE   = 'pushcart-wc';

	/** The widget's own rule for a shop key (widget/pushcart.js refuses any other). */
	const KEY_PATTERN = '/^[A-Za-z0-9_-]{1,64}$/';

	/** Printable ASCII without spaces: what an HMAC secret pasted from the CLI looks like. */
	const SECRET_PATTERN = '/^[\x21-\x7e]{8,256}$/';

	/** Hosts that may be reached over plain http (a Pushcart on the shop's own machine). */
	const LOCAL_HOSTS = array( 'localhost', '127.0.0.1', '[::1]' );

	/**
	 * Registers the setting and the capability that may save it.
	 */
	public static function hook() {
		add_action( 'admin_init', array( __CLASS__, 'register' ) );
		// options.php checks manage_options unless told otherwise: let shop managers save too.
		add_filter( 'option_page_capability_' . self::GROUP, array( __CLASS__, 'capability' ) );
	}

	/**
	 * The setting, for the Settings API (its nonce and its sanitize callback).
	 */
	public static function register() {
		register_setting(
			self::GROUP,
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
	 * Who may see and change the settings: shop managers with WooCommerce, administrators without.
	 *
	 * @return string
	 */
	public static function capability() {
		return class_exists( 'WooCommerce' ) ? 'manage_woocommerce' : 'manage_options';
	}

	/**
	 * The empty settings.
	 *
	 * @return array{url: string, public_key: string, secret: string}
	 */
	public static function defaults() {
		return array(
			'url'        => '',
			'public_key' => '',
			'secret'     => '',
		);
	}

	/**
	 * The stored settings, or one of them; unknown keys are dropped, missing ones are empty.
	 *
	 * @param string|null $key One of url, public_key, secret; null for all.
	 * @return array|string
	 */
	public static function get( $key = null ) {
		$stored = get_option( self::OPTION, array() );
		$out    = self::defaults();
		if ( is_array( $stored ) ) {
			foreach ( $out as $name => $unused ) {
				if ( isset( $stored[ $name ] ) && is_string( $stored[ $name ] ) ) {
					$out[ $name ] = $stored[ $name ];
				}
			}
		}
		return null === $key ? $out : ( isset( $out[ $key ] ) ? $out[ $key ] : '' );
	}

	/**
	 * Whether the widget can be embedded: a URL and a key are both set.
	 *
	 * @return bool
	 */
	public static function is_configured() {
		return '' !== self::get( 'url' ) && '' !== self::get( 'public_key' );
	}

	/**
	 * The sanitize callback. A bad value is refused with a settings error and the stored one kept;
	 * an empty secret field keeps the stored secret (the form never shows it), and the
	 * "remove" box clears it.
	 *
	 * @param mixed $input The submitted option value.
	 * @return array{url: string, public_key: string, secret: string}
	 */
	public static function sanitize( $input ) {
		$old = self::get();
		$out = $old;
		if ( ! is_array( $input ) ) {
			return $out;
		}

		// A connect value fills the URL, the key and the secret from Pushcart's answer at once.
		if ( isset( $input['connect'] ) && is_string( $input['connect'] ) && '' !== trim( $input['connect'] ) ) {
			$connected = Pushcart_WC_Connect::connect( trim( $input['connect'] ) );
			if ( is_array( $connected ) ) {
				add_settings_error( self::OPTION, 'pushcart_connected', __( 'Connected to Pushcart: this site is now one of the shop\'s origins. Press "Create or update the webhooks" below.', 'pushcart-for-woocommerce' ), 'success' );
				return $connected;
			}
			add_settings_error( self::OPTION, 'pushcart_connect', $connected );
			return $out;
		}

		if ( array_key_exists( 'url', $input ) ) {
			$url = self::sanitize_url( $input['url'] );
			if ( null === $url ) {
				add_settings_error( self::OPTION, 'pushcart_url', __( 'The Pushcart URL must be an https:// URL without query or fragment (http:// only for localhost). The previous value was kept.', 'pushcart-for-woocommerce' ) );
			} else {
				$out['url'] = $url;
			}
		}

		if ( array_key_exists( 'public_key', $input ) ) {
			$key = is_string( $input['public_key'] ) ? trim( $input['public_key'] ) : null;
			if ( '' === $key || ( null !== $key && preg_match( self::KEY_PATTERN, $key ) ) ) {
				$out['public_key'] = $key;
			} else {
				add_settings_error( self::OPTION, 'pushcart_public_key', __( 'The shop public key may hold only letters, digits, "_" and "-" (at most 64). The previous value was kept.', 'pushcart-for-woocommerce' ) );
			}
		}

		if ( ! empty( $input['secret_clear'] ) ) {
			$out['secret'] = '';
		} elseif ( isset( $input['secret'] ) && is_string( $input['secret'] ) && '' !== trim( $input['secret'] ) ) {
			$secret = trim( $input['secret'] );
			if ( preg_match( self::SECRET_PATTERN, $secret ) ) {
				$out['secret'] = $secret;
			} else {
				add_settings_error( self::OPTION, 'pushcart_secret', __( 'The webhook secret must be 8 to 256 visible characters without spaces. The previous secret was kept.', 'pushcart-for-woocommerce' ) );
			}
		}

		return $out;
	}

	/**
	 * A Pushcart base URL rebuilt from its parts: https (http only for a local host), a host,
	 * an optional port and path, no credentials, query or fragment, no trailing slash.
	 *
	 * @param mixed $raw The submitted URL.
	 * @return string|null The clean URL, '' for an empty field, null when refused.
	 */
	public static function sanitize_url( $raw ) {
		if ( ! is_string( $raw ) ) {
			return null;
		}
		$raw = trim( $raw );
		if ( '' === $raw ) {
			return '';
		}
		if ( preg_match( '/[\s"\'<>\\\\]/', $raw ) ) {
			return null;
		}
		$parts = wp_parse_url( $raw );
		if ( ! is_array( $parts ) || empty( $parts['scheme'] ) || empty( $parts['host'] ) ) {
			return null;
		}
		if ( isset( $parts['user'] ) || isset( $parts['pass'] ) || isset( $parts['query'] ) || isset( $parts['fragment'] ) || false !== strpos( $raw, '?' ) || false !== strpos( $raw, '#' ) ) {
			return null;
		}
		$scheme = strtolower( $parts['scheme'] );
		$host   = strtolower( $parts['host'] );
		if ( ! preg_match( '/^(?:[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)*$|^\[[0-9a-f:.]+\]$/', $host ) ) {
			return null;
		}
		if ( 'https' !== $scheme && ! ( 'http' === $scheme && in_array( $host, self::LOCAL_HOSTS, true ) ) ) {
			return null;
		}
		$port = '';
		if ( isset( $parts['port'] ) ) {
			$number = (int) $parts['port'];
			if ( $number < 1 || $number > 65535 ) {
				return null;
			}
			$port = ':' . $number;
		}
		$path = isset( $parts['path'] ) ? rtrim( $parts['path'], '/' ) : '';
		if ( '' !== $path && ! preg_match( '#^(?:/[A-Za-z0-9._~-]+)+$#', $path ) ) {
			return null;
		}
		return esc_url_raw( $scheme . '://' . $host . $port . $path, array( 'https', 'http' ) );
	}

	/**
	 * What the form may show of the stored secret: its last four characters, never more.
	 *
	 * @return string '' when none is stored.
	 */
	public static function secret_hint() {
		$secret = self::get( 'secret' );
		if ( '' === $secret ) {
			return '';
		}
		return strlen( $secret ) >= 16 ? '…' . substr( $secret, -4 ) : '…';
	}
}
