<?php
/**
 * Run by run.php in a child process: the parse_request handler for /pushcart-sw.js ends the
 * request with `exit`, so it is called here and its output read by the parent.
 *
 * @package PushcartForWooCommerce
 */

require __DIR__ . '/wp-stubs.php';
require dirname( __DIR__ ) . '/pushcart-for-woocommerce/pushcart-for-woocommerce.php';

defined( 'ABSPATH' ) || exit;

$GLOBALS['pc']['options'][ Pushcart_WC_Settings::OPTION ] = array(
	'url'        => 'https://push.example.com',
	'public_key' => 'shop_Key-1',
);
$plugin = Pushcart_WC_Plugin::instance();
register_shutdown_function(
	function () {
		$body = ob_get_clean();
		echo 'status ', $GLOBALS['pc']['status'], "\n", $body;
	}
);
ob_start();
// Not the service worker's request: nothing happens.
do_action( 'parse_request', (object) array( 'query_vars' => array( 'p' => '3' ) ) );
if ( isset( $argv[1] ) && 'plain' === $argv[1] ) {
	// Plain permalinks: no rewrite rule set the query var, only the path says it.
	$_SERVER['REQUEST_URI'] = '/pushcart-sw.js?shop=shop_Key-1&v=3';
	do_action( 'parse_request', (object) array( 'query_vars' => array() ) );
} else {
	do_action( 'parse_request', (object) array( 'query_vars' => array( 'pushcart_sw' => '1' ) ) );
}
echo 'not reached';
