<?php
/**
 * Uninstall: removes the plugin's options and the webhooks it made, on every site of a network.
 * Orders keep their _pushcart_* meta: it is part of the order's history.
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;
defined( 'WP_UNINSTALL_PLUGIN' ) || exit;

require_once __DIR__ . '/includes/class-pushcart-wc-settings.php';
require_once __DIR__ . '/includes/class-pushcart-wc-webhooks.php';
require_once __DIR__ . '/includes/class-pushcart-wc-manifest.php';

/**
 * Removes this site's webhooks (while WooCommerce is loaded) and options.
 */
function pushcart_wc_uninstall_site() {
	Pushcart_WC_Webhooks::delete_all();
	delete_option( Pushcart_WC_Settings::OPTION );
	delete_option( Pushcart_WC_Webhooks::OPTION );
	delete_option( Pushcart_WC_Manifest::OPTION );
}

if ( is_multisite() && function_exists( 'get_sites' ) ) {
	foreach ( get_sites( array( 'fields' => 'ids', 'number' => 0 ) ) as $pushcart_wc_site_id ) {
		switch_to_blog( $pushcart_wc_site_id );
		pushcart_wc_uninstall_site();
		restore_current_blog();
	}
} else {
	pushcart_wc_uninstall_site();
}
