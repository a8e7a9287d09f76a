<?php
/**
 * Connecting from one pasted value: Pushcart's Install page makes a connect value
 * (`PUBLIC_URL/connect/<public_key>.<token>`, one use, one hour); the plugin sends it with this
 * site's address to `POST PUBLIC_URL/v1/connect` and keeps the URL, the public key and the
 * webhook secret Pushcart answers.
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * The connect value and Pushcart's connect call.
 */
final class Pushcart_WC_Connect {

	/** `<base URL>/connect/<public key>.<token>`: the base is checked again as a Pushcart URL. */
	const VALUE_PATTERN = '#^(\S+?)/connect/([A-Za-z0-9_-]{1,64})\.([A-Za-z0-9_-]{20,100})/?$#';

	/** Values already sent in this request: WordPress may run a setting's sanitizing twice. */
	private static $done = array();

	/**
	 * The parts of a pasted connect value.
	 *
	 * @param mixed $value The pasted value.
	 * @return array{url: string, public_key: string, value: string}|null Null when it is not one.
	 */
	public static function parse( $value ) {
		if ( ! is_string( $value ) || ! preg_match( self::VALUE_PATTERN, trim( $value ), $m ) ) {
			return null;
		}
		$url = Pushcart_WC_Settings::sanitize_url( $m[1] );
		if ( null === $url || '' === $url ) {
			return null;
		}
		return array(
			'url'        => $url,
			'public_key' => $m[2],
			'value'      => $url . '/connect/' . $m[2] . '.' . $m[3],
		);
	}

	/**
	 * This site's origin (scheme, host and port of the home URL), as the widget's pages send it.
	 *
	 * @return string
	 */
	public static function site_origin() {
		$parts = wp_parse_url( home_url( '/' ) );
		$host  = isset( $parts['host'] ) ? strtolower( $parts['host'] ) : '';
		$port  = isset( $parts['port'] ) ? ':' . (int) $parts['port'] : '';
		return ( isset( $parts['scheme'] ) ? strtolower( $parts['scheme'] ) : 'https' ) . '://' . $host . $port;
	}

	/**
	 * Spend a connect value: on success the settings to keep, else a message for the merchant.
	 *
	 * @param string $value The pasted value.
	 * @return array{url: string, public_key: string, secret: string}|string
	 */
	public static function connect( $value ) {
		$parsed = self::parse( $value );
		if ( null === $parsed ) {
			return __( 'That is not a Pushcart connect value: copy the whole address from Pushcart\'s Install page (it starts with https:// and holds /connect/).', 'pushcart-for-woocommerce' );
		}
		if ( isset( self::$done[ $parsed['value'] ] ) ) {
			return self::$done[ $parsed['value'] ];
		}
		$response = wp_remote_post(
			$parsed['url'] . '/v1/connect',
			array(
				'timeout'     => 15,
				'redirection' => 0,
				'headers'     => array( 'Content-Type' => 'application/json' ),
				'body'        => wp_json_encode(
					array(
						'token'    => $parsed['value'],
						'origin'   => self::site_origin(),
						'platform' => 'woocommerce',
					)
				),
			)
		);
		self::$done[ $parsed['value'] ] = self::result( $parsed, $response );
		return self::$done[ $parsed['value'] ];
	}

	/**
	 * Pushcart's answer as settings, or what went wrong in words.
	 *
	 * @param array $parsed   The parsed value.
	 * @param mixed $response What wp_remote_post returned.
	 * @return array{url: string, public_key: string, secret: string}|string
	 */
	private static function result( $parsed, $response ) {
		if ( is_wp_error( $response ) ) {
			return __( 'Pushcart could not be reached at that address. Check that the service runs and that this site can reach it, then try again.', 'pushcart-for-woocommerce' );
		}
		$status = (int) wp_remote_retrieve_response_code( $response );
		$answer = json_decode( (string) wp_remote_retrieve_body( $response ), true );
		if ( 200 !== $status ) {
			$message = is_array( $answer ) && isset( $answer['error']['message'] ) && is_string( $answer['error']['message'] ) ? $answer['error']['message'] : 'HTTP ' . $status;
			/* translators: %s: Pushcart's reason. */
			return sprintf( __( 'Pushcart refused the connect value: %s', 'pushcart-for-woocommerce' ), wp_strip_all_tags( $message ) );
		}
		$key    = is_array( $answer ) && isset( $answer['public_key'] ) ? $answer['public_key'] : null;
		$secret = is_array( $answer ) && isset( $answer['webhook_secret'] ) ? $answer['webhook_secret'] : null;
		if ( $key !== $parsed['public_key'] || ! is_string( $secret ) || ! preg_match( Pushcart_WC_Settings::SECRET_PATTERN, $secret ) ) {
			return __( 'Pushcart\'s answer was not what the plugin expects: is the plugin up to date?', 'pushcart-for-woocommerce' );
		}
		return array(
			'url'        => $parsed['url'],
			'public_key' => $key,
			'secret'     => $secret,
		);
	}
}
