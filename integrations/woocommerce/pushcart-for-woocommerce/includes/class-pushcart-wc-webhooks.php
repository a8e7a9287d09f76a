<?php
/**
 * The shop's WooCommerce webhooks to Pushcart, made through WooCommerce's own WC_Webhook API:
 * WooCommerce then signs, queues, retries and logs the deliveries itself.
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Creates, updates and reports the webhooks for order.created, order.updated and product.updated.
 */
final class Pushcart_WC_Webhooks {

	/** Topic => webhook id of the webhooks this plugin made. */
	const OPTION = 'pushcart_wc_webhook_ids';

	const TOPICS = array( 'order.created', 'order.updated', 'product.updated' );

	/**
	 * Registers the hooks.
	 */
	public function hook() {
		// A changed URL, key or secret reaches the webhooks already made, without another click.
		add_action( 'update_option_' . Pushcart_WC_Settings::OPTION, array( $this, 'on_settings_updated' ), 10, 2 );
	}

	/**
	 * Pushcart's WooCommerce endpoint for this shop: `<url>/v1/integrations/woocommerce/<key>`.
	 *
	 * @return string '' until the URL and key are set.
	 */
	public static function delivery_url() {
		if ( ! Pushcart_WC_Settings::is_configured() ) {
			return '';
		}
		return Pushcart_WC_Settings::get( 'url' ) . '/v1/integrations/woocommerce/' . rawurlencode( Pushcart_WC_Settings::get( 'public_key' ) );
	}

	/**
	 * Makes the three webhooks, or updates the ones already made (URL, secret, active again
	 * after WooCommerce disabled one for failing), as the given user: WooCommerce builds each
	 * payload with that user's rights.
	 *
	 * @param int $user_id The user the webhooks run as (a shop manager).
	 * @return string created | no_woocommerce | not_configured
	 */
	public function sync( $user_id ) {
		if ( ! class_exists( 'WC_Webhook' ) ) {
			return 'no_woocommerce';
		}
		$url    = self::delivery_url();
		$secret = Pushcart_WC_Settings::get( 'secret' );
		if ( '' === $url || '' === $secret ) {
			return 'not_configured';
		}
		$ids = self::stored_ids();
		foreach ( self::TOPICS as $topic ) {
			$webhook = isset( $ids[ $topic ] ) ? wc_get_webhook( $ids[ $topic ] ) : null;
			if ( ! $webhook ) {
				$webhook = new WC_Webhook();
			}
			/* translators: %s: a webhook topic such as order.created */
			$webhook->set_name( sprintf( __( 'Pushcart: %s', 'pushcart-for-woocommerce' ), $topic ) );
			$webhook->set_topic( $topic );
			$webhook->set_delivery_url( $url );
			$webhook->set_secret( $secret );
			$webhook->set_api_version( 'wp_api_v3' );
			$webhook->set_user_id( (int) $user_id );
			$webhook->set_status( 'active' );
			$ids[ $topic ] = (int) $webhook->save();
		}
		update_option( self::OPTION, $ids, false );
		return 'created';
	}

	/**
	 * `update_option_pushcart_wc_settings`: re-syncs the webhooks already made when the URL,
	 * key or secret changed.
	 *
	 * @param mixed $old The previous settings.
	 * @param mixed $new The new settings.
	 */
	public function on_settings_updated( $old, $new ) {
		if ( ! self::stored_ids() || ! is_array( $old ) || ! is_array( $new ) ) {
			return;
		}
		foreach ( array( 'url', 'public_key', 'secret' ) as $name ) {
			$before = isset( $old[ $name ] ) ? $old[ $name ] : '';
			$after  = isset( $new[ $name ] ) ? $new[ $name ] : '';
			if ( $before !== $after ) {
				$this->sync( get_current_user_id() );
				return;
			}
		}
	}

	/**
	 * The state of each topic's webhook, for the settings page.
	 *
	 * @return array[] Each: topic, exists, status, delivery_url, failures, matches (points at
	 *                 this shop's current delivery URL).
	 */
	public function statuses() {
		$ids     = self::stored_ids();
		$current = self::delivery_url();
		$out     = array();
		foreach ( self::TOPICS as $topic ) {
			$webhook = ( isset( $ids[ $topic ] ) && function_exists( 'wc_get_webhook' ) ) ? wc_get_webhook( $ids[ $topic ] ) : null;
			if ( ! $webhook ) {
				$out[] = array(
					'topic'        => $topic,
					'exists'       => false,
					'status'       => '',
					'delivery_url' => '',
					'failures'     => 0,
					'matches'      => false,
				);
				continue;
			}
			$out[] = array(
				'topic'        => $topic,
				'exists'       => true,
				'status'       => (string) $webhook->get_status(),
				'delivery_url' => (string) $webhook->get_delivery_url(),
				'failures'     => (int) $webhook->get_failure_count(),
				'matches'      => '' !== $current && $webhook->get_delivery_url() === $current,
			);
		}
		return $out;
	}

	/**
	 * Deletes the webhooks this plugin made (for uninstall).
	 */
	public static function delete_all() {
		if ( ! function_exists( 'wc_get_webhook' ) ) {
			return;
		}
		foreach ( self::stored_ids() as $id ) {
			$webhook = wc_get_webhook( $id );
			if ( $webhook ) {
				$webhook->delete( true );
			}
		}
	}

	/**
	 * The stored topic => id map, with only known topics and positive ids.
	 *
	 * @return array<string, int>
	 */
	public static function stored_ids() {
		$ids = get_option( self::OPTION, array() );
		$out = array();
		if ( is_array( $ids ) ) {
			foreach ( self::TOPICS as $topic ) {
				if ( isset( $ids[ $topic ] ) && (int) $ids[ $topic ] > 0 ) {
					$out[ $topic ] = (int) $ids[ $topic ];
				}
			}
		}
		return $out;
	}
}
