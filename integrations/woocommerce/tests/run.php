<?php
/**
 * The plugin's tests, on the stand-ins in wp-stubs.php: `php integrations/woocommerce/tests/run.php`.
 * Each test boots the plugin afresh (one "request"), runs its callbacks through the recorded
 * hooks and asserts on what they print and store. Ends with "N passed, N failed"; exits 1 on
 * any failure.
 *
 * @package PushcartForWooCommerce
 */

require __DIR__ . '/wp-stubs.php';
require dirname( __DIR__ ) . '/pushcart-for-woocommerce/pushcart-for-woocommerce.php';

defined( 'ABSPATH' ) || exit;

const PC_URL    = 'https://push.example.com';
const PC_KEY    = 'shop_Key-1';
const PC_SECRET = 'whsec_0123456789abcdefWXYZ';
const PC_HOSTILE = '</script><img src=x onerror=alert(1)>';

$GLOBALS['pc_tests'] = array();

function test( $name, callable $body ) {
	$GLOBALS['pc_tests'][ $name ] = $body;
}

class PC_Assertion_Failed extends Exception {}

function check( $condition, $message ) {
	if ( ! $condition ) {
		throw new PC_Assertion_Failed( $message );
	}
}
function same( $expected, $actual, $what = 'value' ) {
	if ( $expected !== $actual ) {
		throw new PC_Assertion_Failed( $what . ":\n  expected " . var_export( $expected, true ) . "\n  actual   " . var_export( $actual, true ) );
	}
}
function contains( $needle, $haystack, $what = 'output' ) {
	check( false !== strpos( $haystack, $needle ), $what . ' lacks ' . var_export( $needle, true ) . ":\n  " . $haystack );
}
function lacks( $needle, $haystack, $what = 'output' ) {
	check( false === strpos( $haystack, $needle ), $what . ' holds ' . var_export( $needle, true ) . ":\n  " . $haystack );
}
function output_of( callable $body ) {
	ob_start();
	try {
		$body();
	} finally {
		$out = ob_get_clean();
	}
	return $out;
}
function thrown( $class, callable $body ) {
	try {
		$body();
	} catch ( Exception $e ) {
		check( $e instanceof $class, 'expected ' . $class . ', got ' . get_class( $e ) . ': ' . $e->getMessage() );
		return $e;
	}
	throw new PC_Assertion_Failed( 'expected ' . $class . ', nothing was thrown' );
}

// ---- fixtures ----------------------------------------------------------------------------------

/**
 * A fresh request: empty state, the plugin built and hooked again.
 *
 * @return Pushcart_WC_Plugin
 */
function boot() {
	pc_reset();
	$instance = new ReflectionProperty( 'Pushcart_WC_Plugin', 'instance' );
	$instance->setAccessible( true );
	$instance->setValue( null, null );
	$done = new ReflectionProperty( 'Pushcart_WC_Connect', 'done' );
	$done->setAccessible( true );
	$done->setValue( null, array() );
	return Pushcart_WC_Plugin::instance();
}

function configure( $secret = PC_SECRET ) {
	$GLOBALS['pc']['options'][ Pushcart_WC_Settings::OPTION ] = array(
		'url'        => PC_URL,
		'public_key' => PC_KEY,
		'secret'     => $secret,
	);
}

/**
 * A shop with two lines in the cart: 2 × a mug, 1 × a t-shirt variation.
 *
 * @return WooCommerce
 */
function shop() {
	$mug   = new PC_Product( 11, 'Mug', '12.5', 'https://shop.example/product/mug/', 501 );
	$shirt = new PC_Product( 22, 'T-shirt - Blue', 9.99, 'https://shop.example/product/t-shirt/?attribute_color=blue', 0 );
	$GLOBALS['pc']['products'] = array( 11 => $mug, 22 => $shirt, 20 => new PC_Product( 20, 'T-shirt', 9.99, 'https://shop.example/product/t-shirt/' ) );

	$wc                      = new WooCommerce();
	$wc->session             = new PC_Session();
	$wc->session->data[ Pushcart_WC_Cart_Events::TOKEN_KEY ] = str_repeat( 'ab', 16 );
	$wc->cart                = new PC_Cart();
	$wc->cart->cart_contents = array(
		'k-mug'   => array( 'product_id' => 11, 'variation_id' => 0, 'quantity' => 2, 'data' => $mug ),
		'k-shirt' => array( 'product_id' => 20, 'variation_id' => 22, 'quantity' => 1, 'data' => $shirt ),
	);
	$wc->cart->total         = 34.99;
	$GLOBALS['pc']['wc']     = $wc;
	return $wc;
}

function expected_cart() {
	return array(
		'token'        => str_repeat( 'ab', 16 ),
		'total'        => '34.99',
		'currency'     => 'EUR',
		'item_count'   => 3,
		'checkout_url' => 'https://shop.example/checkout/',
		'items'        => array(
			array(
				'id'       => '11',
				'title'    => 'Mug',
				'price'    => '12.50',
				'quantity' => 2,
				'url'      => 'https://shop.example/product/mug/',
				'image'    => 'https://shop.example/wp-content/uploads/501-woocommerce_thumbnail.jpg',
			),
			array(
				'id'       => '22',
				'title'    => 'T-shirt - Blue',
				'price'    => '9.99',
				'quantity' => 1,
				'url'      => 'https://shop.example/product/t-shirt/?attribute_color=blue',
			),
		),
	);
}

function expected_mug() {
	return array(
		'id'       => '11',
		'title'    => 'Mug',
		'price'    => '12.50',
		'currency' => 'EUR',
		'url'      => 'https://shop.example/product/mug/',
		'image'    => 'https://shop.example/wp-content/uploads/501-woocommerce_thumbnail.jpg',
	);
}

/**
 * The widget calls in a footer's output, decoded; also checks the script's frame.
 *
 * @param string $html What wp_footer printed.
 * @return array[]
 */
function footer_calls( $html ) {
	check( 1 === preg_match( '~^<script id="pushcart-wc-events">window\.pushcart=window\.pushcart\|\|\[\];((?:pushcart\.push\(.*?\);)+)</script>\n$~s', $html ), 'footer script frame: ' . $html );
	same( 1, substr_count( $html, '</script' ), 'closing script tags' );
	preg_match_all( '~pushcart\.push\((.*?)\);(?=pushcart\.push|</script>)~s', $html, $m );
	return array_map(
		function ( $json ) {
			return json_decode( $json, true );
		},
		$m[1]
	);
}

function queued() {
	return WC()->session->get( Pushcart_WC_Cart_Events::QUEUE_KEY, array() );
}

// ---- wiring ------------------------------------------------------------------------------------

test( 'plugin registers its hooks on plugins_loaded', function () {
	pc_reset();
	$plugin = boot();
	foreach ( array( 'wp_enqueue_scripts', 'parse_request', 'init', 'wp_footer', 'woocommerce_add_to_cart', 'woocommerce_cart_item_removed', 'woocommerce_after_cart_item_quantity_update', 'template_redirect', 'woocommerce_before_checkout_form', 'woocommerce_checkout_create_order', 'woocommerce_store_api_checkout_update_order_meta', 'woocommerce_cart_emptied', 'wc_ajax_pushcart_events', 'admin_menu', 'admin_init', 'admin_post_pushcart_wc_webhooks', 'script_loader_tag', 'query_vars' ) as $tag ) {
		check( pc_callbacks( $tag ), 'nothing on ' . $tag );
	}
	check( has_action( 'woocommerce_add_to_cart', array( $plugin->cart_events, 'on_add_to_cart' ) ), 'add_to_cart callback' );
} );

test( 'the settings page sits under WooCommerce with manage_woocommerce, and options.php accepts that capability', function () {
	boot();
	do_action( 'admin_menu' );
	same( 'woocommerce', $GLOBALS['pc']['menus'][0]['parent'], 'menu parent' );
	same( 'manage_woocommerce', $GLOBALS['pc']['menus'][0]['capability'], 'menu capability' );
	same( 'manage_woocommerce', apply_filters( 'option_page_capability_pushcart_wc', 'manage_options' ), 'options.php capability' );
	do_action( 'admin_init' );
	same( 'pushcart_wc', $GLOBALS['pc']['registered']['pushcart_wc_settings']['group'], 'setting group' );
	same( array( 'Pushcart_WC_Settings', 'sanitize' ), $GLOBALS['pc']['registered']['pushcart_wc_settings']['sanitize_callback'], 'sanitize callback' );
} );

// ---- the script tag ----------------------------------------------------------------------------

test( 'the widget is enqueued async without a version, and its tag gets data-shop', function () {
	boot();
	configure();
	shop();
	do_action( 'wp_enqueue_scripts' );
	$widget = $GLOBALS['pc']['scripts']['pushcart-widget'];
	same( PC_URL . '/widget.js', $widget['src'], 'widget src' );
	same( null, $widget['ver'], 'widget version' );
	same( array( 'strategy' => 'async', 'in_footer' => false ), $widget['args'], 'widget args' );

	// The contract's markup from the plainest tag WordPress makes...
	same(
		'<script src="https://push.example.com/widget.js" data-shop="shop_Key-1" async></script>' . "\n",
		apply_filters( 'script_loader_tag', '<script src="https://push.example.com/widget.js"></script>' . "\n", 'pushcart-widget', PC_URL . '/widget.js' ),
		'tag from a bare script element'
	);
	// ...and from what WordPress 6.3+ prints for the async strategy (its attributes are kept, async is not doubled).
	same(
		'<script src="https://push.example.com/widget.js" id="pushcart-widget-js" async data-wp-strategy="async" data-shop="shop_Key-1"></script>' . "\n",
		apply_filters( 'script_loader_tag', '<script src="https://push.example.com/widget.js" id="pushcart-widget-js" async data-wp-strategy="async"></script>' . "\n", 'pushcart-widget', PC_URL . '/widget.js' ),
		'tag from WordPress 6.3'
	);
	same( '<script src="x.js"></script>', apply_filters( 'script_loader_tag', '<script src="x.js"></script>', 'jquery', 'x.js' ), 'other handles untouched' );

	$helper = $GLOBALS['pc']['scripts']['pushcart-wc'];
	same( 'https://shop.example/wp-content/plugins/pushcart-for-woocommerce/assets/pushcart-wc.js', $helper['src'], 'helper src' );
	same( array( 'window.pushcartWc={"events":"/?wc-ajax=pushcart_events","nonce":"nonce-pushcart_wc_events"};' ), $GLOBALS['pc']['inline']['pushcart-wc']['before'], 'helper config' );
} );

test( 'no script is added until the URL and the key are set, nor on admin pages', function () {
	boot();
	shop();
	do_action( 'wp_enqueue_scripts' );
	same( array(), $GLOBALS['pc']['scripts'], 'scripts without settings' );
	$GLOBALS['pc']['options'][ Pushcart_WC_Settings::OPTION ] = array( 'url' => PC_URL, 'public_key' => '' );
	do_action( 'wp_enqueue_scripts' );
	same( array(), $GLOBALS['pc']['scripts'], 'scripts without a key' );
	configure();
	$GLOBALS['pc']['is_admin'] = true;
	do_action( 'wp_enqueue_scripts' );
	same( array(), $GLOBALS['pc']['scripts'], 'scripts on admin pages' );
} );

test( 'a key stored around the sanitizer is still escaped in the tag', function () {
	boot();
	$GLOBALS['pc']['options'][ Pushcart_WC_Settings::OPTION ] = array( 'url' => PC_URL, 'public_key' => '"><script>alert(1)</script>' );
	$tag = apply_filters( 'script_loader_tag', '<script src="https://push.example.com/widget.js"></script>', 'pushcart-widget', '' );
	same( '<script src="https://push.example.com/widget.js" data-shop="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;" async></script>', $tag, 'escaped tag' );
} );

// ---- the service worker ------------------------------------------------------------------------

test( 'the rewrite rules and query vars for /pushcart-sw.js and the manifest, flushed on activation and removed on deactivation', function () {
	boot();
	do_action( 'init' );
	$rules = array(
		'^pushcart-sw\.js$'                => 'index.php?pushcart_sw=1',
		'^pushcart-manifest\.webmanifest$' => 'index.php?pushcart_manifest=1',
	);
	same( $rules, $GLOBALS['wp_rewrite']->extra_rules_top, 'rules' );
	same( array( 'p', 'pushcart_sw', 'pushcart_manifest' ), apply_filters( 'query_vars', array( 'p' ) ), 'query vars' );

	$GLOBALS['wp_rewrite']->extra_rules_top = array();
	call_user_func( $GLOBALS['pc_activation']['activate'] );
	same( 1, $GLOBALS['pc']['flushes'], 'flushed on activation' );
	same( $rules, $GLOBALS['pc']['rewrite_rules'], 'rules after activation' );

	call_user_func( $GLOBALS['pc_activation']['deactivate'] );
	same( 2, $GLOBALS['pc']['flushes'], 'flushed on deactivation' );
	same( array(), $GLOBALS['pc']['rewrite_rules'], 'rules after deactivation' );
} );

test( 'the service worker answer: JavaScript, exactly importScripts of the Pushcart sw.js', function () {
	boot();
	configure();
	same(
		array(
			'status'  => 200,
			'headers' => array(
				'Content-Type'           => 'application/javascript; charset=utf-8',
				'Cache-Control'          => 'public, max-age=3600',
				'X-Content-Type-Options' => 'nosniff',
				'X-Robots-Tag'           => 'noindex',
			),
			'body'    => 'importScripts("https://push.example.com/sw.js");',
		),
		Pushcart_WC_Frontend::service_worker_response(),
		'response'
	);
	check( Pushcart_WC_Frontend::is_service_worker_request( (object) array( 'query_vars' => array( 'pushcart_sw' => '1' ) ) ), 'sw request' );
	check( ! Pushcart_WC_Frontend::is_service_worker_request( (object) array( 'query_vars' => array( 'p' => '3' ) ) ), 'other request' );

	$GLOBALS['pc']['options'][ Pushcart_WC_Settings::OPTION ]['url'] = 'http://127.0.0.1:5000/push';
	same( 'importScripts("http://127.0.0.1:5000/push/sw.js");', Pushcart_WC_Frontend::service_worker_response()['body'], 'body with a port and a path' );
} );

test( 'the service worker is a 404 until the URL is set', function () {
	boot();
	$response = Pushcart_WC_Frontend::service_worker_response();
	same( 404, $response['status'], 'status' );
	lacks( 'importScripts', $response['body'], 'body' );
} );

test( 'a URL stored around the sanitizer cannot break out of the importScripts string', function () {
	boot();
	$GLOBALS['pc']['options'][ Pushcart_WC_Settings::OPTION ] = array( 'url' => 'https://evil.example/");alert(1);//</script>', 'public_key' => PC_KEY );
	$body = Pushcart_WC_Frontend::service_worker_response()['body'];
	same( 'importScripts("https://evil.example/\u0022);alert(1);//\u003C/script\u003E/sw.js");', $body, 'body' );
} );

test( 'parse_request serves the file and stops (in a child process, since it exits)', function () {
	$child = __DIR__ . '/serve-sw-child.php';
	$out   = shell_exec( escapeshellarg( PHP_BINARY ) . ' ' . escapeshellarg( $child ) . ' 2>&1' );
	same( "status 200\nimportScripts(\"https://push.example.com/sw.js\");", $out, 'child output' );
} );

test( 'with plain permalinks parse_request serves the file from its path, before any canonical redirect', function () {
	$child = __DIR__ . '/serve-sw-child.php';
	$out   = shell_exec( escapeshellarg( PHP_BINARY ) . ' ' . escapeshellarg( $child ) . ' plain 2>&1' );
	same( "status 200\nimportScripts(\"https://push.example.com/sw.js\");", $out, 'child output' );
} );

test( 'the worker path is the home path plus pushcart-sw.js, whatever the query string', function () {
	boot();
	check( Pushcart_WC_Frontend::is_worker_path( '/pushcart-sw.js' ), 'at the root' );
	check( Pushcart_WC_Frontend::is_worker_path( '/pushcart-sw.js?shop=k&v=2' ), 'with a query' );
	check( ! Pushcart_WC_Frontend::is_worker_path( '/blog/pushcart-sw.js' ), 'elsewhere' );
	check( ! Pushcart_WC_Frontend::is_worker_path( '/pushcart-sw.jsx' ), 'another name' );
	check( ! Pushcart_WC_Frontend::is_worker_path( '/?p=1' ), 'a post' );
	$GLOBALS['pc']['home'] = 'https://shop.example/wp/';
	check( Pushcart_WC_Frontend::is_worker_path( '/wp/pushcart-sw.js' ), 'under a sub-folder home' );
	check( ! Pushcart_WC_Frontend::is_worker_path( '/pushcart-sw.js' ), 'outside the sub-folder home' );
	same( 'https://shop.example/wp/pushcart-sw.js', Pushcart_WC_Frontend::worker_url(), 'url' );
} );

function site_answers( $status, $headers, $body ) {
	$GLOBALS['pc']['http_response'] = array(
		'response' => array( 'code' => $status ),
		'headers'  => $headers,
		'body'     => $body,
	);
}

test( 'the worker check names what stops the worker: redirect, not passed to WordPress, not JavaScript, unreachable', function () {
	boot();
	configure();
	site_answers( 200, array( 'content-type' => 'application/javascript; charset=utf-8' ), 'importScripts("https://push.example.com/sw.js");' );
	$ok = Pushcart_WC_Frontend::check_worker();
	same( true, $ok['ok'], 'served' );
	same( 'https://shop.example/pushcart-sw.js', $GLOBALS['pc']['http'][0]['url'], 'fetched url' );
	same( 0, $GLOBALS['pc']['http'][0]['args']['redirection'], 'no redirects followed' );

	site_answers( 301, array( 'location' => 'https://shop.example/pushcart-sw-js/' ), '' );
	$moved = Pushcart_WC_Frontend::check_worker();
	same( false, $moved['ok'], 'redirected' );
	contains( 'redirect (301 to https://shop.example/pushcart-sw-js/)', $moved['message'], 'redirect message' );

	site_answers( 404, array( 'content-type' => 'text/html' ), '<html>' );
	$missing = Pushcart_WC_Frontend::check_worker();
	same( false, $missing['ok'], 'not found' );
	contains( 'pretty permalinks', $missing['message'], 'not found message' );

	site_answers( 200, array( 'content-type' => 'text/html' ), '<html>' );
	$html = Pushcart_WC_Frontend::check_worker();
	same( false, $html['ok'], 'a page instead' );
	contains( 'not the Pushcart worker', $html['message'], 'page message' );

	$GLOBALS['pc']['http_response'] = null;
	$down = Pushcart_WC_Frontend::check_worker();
	same( false, $down['ok'], 'unreachable' );
	contains( 'could not fetch its own', $down['message'], 'unreachable message' );
} );

test( 'the settings page shows the worker check once the plugin is set up', function () {
	boot();
	configure();
	do_action( 'admin_init' );
	site_answers( 301, array( 'location' => 'https://shop.example/x/' ), '' );
	$html = output_of( array( Pushcart_WC_Plugin::instance()->admin, 'render' ) );
	contains( '<div class="notice inline notice-error"><p id="pushcart-wc-check-worker" class="pushcart-wc-check-failed"><strong>Worker file: not reachable.</strong>', $html, 'page' );
} );

test( 'the webhook button names what blocks it', function () {
	boot();
	contains( 'connect value', Pushcart_WC_Admin::webhook_blocker(), 'nothing set' );
	configure( '' );
	contains( 'webhook secret', Pushcart_WC_Admin::webhook_blocker(), 'no secret' );
	configure();
	same( '', Pushcart_WC_Admin::webhook_blocker(), 'ready' );
} );

test( 'before WordPress 6.3 the scripts get the in_footer flag, not a strategy array', function () {
	boot();
	same( array( 'strategy' => 'async', 'in_footer' => false ), Pushcart_WC_Frontend::script_args( 'async', false ), '6.4' );
	$GLOBALS['wp_version'] = '6.1.9';
	same( false, Pushcart_WC_Frontend::script_args( 'async', false ), 'widget on 6.1' );
	same( true, Pushcart_WC_Frontend::script_args( 'defer', true ), 'helper on 6.1' );
} );

// ---- cart events -------------------------------------------------------------------------------

test( 'add to cart queues an event, and the footer prints it once as a widget call with the whole cart', function () {
	boot();
	configure();
	shop();
	do_action( 'woocommerce_add_to_cart', 'k-mug', 11, 1, 0, array(), array() );
	same( array( array( 'type' => 'add_to_cart', 'product' => expected_mug() ) ), queued(), 'queue' );

	$html = output_of( function () {
		do_action( 'wp_footer' );
	} );
	same( array( array( 'track', 'add_to_cart', array( 'product' => expected_mug(), 'cart' => expected_cart() ) ) ), footer_calls( $html ), 'calls' );
	same( array(), queued(), 'queue after the footer' );
	same( '', output_of( function () {
		do_action( 'wp_footer' );
	} ), 'second footer' );
	check( defined( 'DONOTCACHEPAGE' ), 'page caches told to skip the page' );
} );

test( 'the printed JSON is the exact string, money as two-decimal strings and ids as strings', function () {
	boot();
	configure();
	shop();
	do_action( 'woocommerce_add_to_cart', 'k-shirt', 20, 1, 22, array(), array() );
	$html = output_of( function () {
		do_action( 'wp_footer' );
	} );
	$shirt = '{"id":"22","title":"T-shirt - Blue","price":"9.99","currency":"EUR","url":"https://shop.example/product/t-shirt/?attribute_color=blue"}';
	$cart  = '{"token":"abababababababababababababababab","total":"34.99","currency":"EUR","item_count":3,"checkout_url":"https://shop.example/checkout/","items":[{"id":"11","title":"Mug","price":"12.50","quantity":2,"url":"https://shop.example/product/mug/","image":"https://shop.example/wp-content/uploads/501-woocommerce_thumbnail.jpg"},{"id":"22","title":"T-shirt - Blue","price":"9.99","quantity":1,"url":"https://shop.example/product/t-shirt/?attribute_color=blue"}]}';
	same( '<script id="pushcart-wc-events">window.pushcart=window.pushcart||[];pushcart.push(["track","add_to_cart",{"product":' . $shirt . ',"cart":' . $cart . '}]);</script>' . "\n", $html, 'footer' );
} );

test( 'adding a product already in the cart (quantity hook, then add hook) is one event', function () {
	boot();
	configure();
	$wc = shop();
	do_action( 'woocommerce_after_cart_item_quantity_update', 'k-mug', 3, 2, $wc->cart );
	do_action( 'woocommerce_add_to_cart', 'k-mug', 11, 1, 0, array(), array() );
	same( array( array( 'type' => 'add_to_cart', 'product' => expected_mug() ) ), queued(), 'queue' );
} );

test( 'quantity changes: more is add_to_cart, fewer is remove_from_cart, the same is nothing', function () {
	boot();
	configure();
	$wc = shop();
	do_action( 'woocommerce_after_cart_item_quantity_update', 'k-mug', 2, 2, $wc->cart );
	same( array(), queued(), 'unchanged quantity' );
	do_action( 'woocommerce_after_cart_item_quantity_update', 'k-mug', 1, 2, $wc->cart );
	do_action( 'woocommerce_after_cart_item_quantity_update', 'k-shirt', 4, 1, $wc->cart );
	same( array( 'remove_from_cart', 'add_to_cart' ), array_column( queued(), 'type' ), 'types' );
	same( expected_mug(), queued()[0]['product'], 'product of the lowered line' );
} );

test( 'removing a line sends remove_from_cart with the product loaded by its variation id', function () {
	boot();
	configure();
	$wc = shop();
	$wc->cart->removed_cart_contents['k-shirt'] = array( 'product_id' => 20, 'variation_id' => 22, 'quantity' => 1 );
	unset( $wc->cart->cart_contents['k-shirt'] );
	$wc->cart->total = 25.0;
	do_action( 'woocommerce_cart_item_removed', 'k-shirt', $wc->cart );
	$calls = footer_calls( output_of( function () {
		do_action( 'wp_footer' );
	} ) );
	same( 'remove_from_cart', $calls[0][1], 'type' );
	same( '22', $calls[0][2]['product']['id'], 'removed product id' );
	same( array( '25.00', 2, 1 ), array( $calls[0][2]['cart']['total'], $calls[0][2]['cart']['item_count'], count( $calls[0][2]['cart']['items'] ) ), 'cart after removal' );
} );

test( 'the checkout page queues checkout_started once, not on its endpoints nor with an empty cart', function () {
	boot();
	configure();
	$wc                           = shop();
	$GLOBALS['pc']['is_checkout'] = true;
	do_action( 'template_redirect' );
	do_action( 'woocommerce_before_checkout_form', null );
	same( array( array( 'type' => 'checkout_started' ) ), queued(), 'queue' );
	$calls = footer_calls( output_of( function () {
		do_action( 'wp_footer' );
	} ) );
	same( array( array( 'track', 'checkout_started', array( 'cart' => expected_cart() ) ) ), $calls, 'calls' );

	boot();
	configure();
	shop();
	$GLOBALS['pc']['is_checkout'] = true;
	$GLOBALS['pc']['is_endpoint'] = true;
	do_action( 'template_redirect' );
	same( array(), queued(), 'queue on order-received' );

	boot();
	configure();
	$wc                           = shop();
	$wc->cart->cart_contents      = array();
	$GLOBALS['pc']['is_checkout'] = true;
	do_action( 'template_redirect' );
	same( array(), queued(), 'queue with an empty cart' );
} );

test( 'the checkout shortcode elsewhere queues checkout_started too', function () {
	boot();
	configure();
	shop();
	do_action( 'woocommerce_before_checkout_form', null );
	same( array( array( 'type' => 'checkout_started' ) ), queued(), 'queue' );
} );

test( 'nothing is queued while the plugin is not set up', function () {
	boot();
	shop();
	do_action( 'woocommerce_add_to_cart', 'k-mug', 11, 1, 0, array(), array() );
	same( array(), queued(), 'queue' );
} );

test( 'an XHR page fetch (the cart page reloading itself) keeps the events for later', function () {
	boot();
	configure();
	shop();
	do_action( 'woocommerce_add_to_cart', 'k-mug', 11, 1, 0, array(), array() );
	$_SERVER['HTTP_X_REQUESTED_WITH'] = 'XMLHttpRequest';
	same( '', output_of( function () {
		do_action( 'wp_footer' );
	} ), 'footer' );
	same( 1, count( queued() ), 'queue kept' );
} );

test( 'the AJAX endpoint hands over the queued calls once, with a nonce, by POST', function () {
	boot();
	configure();
	shop();
	do_action( 'woocommerce_add_to_cart', 'k-mug', 11, 1, 0, array(), array() );

	$_REQUEST['nonce']         = 'forged';
	$_SERVER['REQUEST_METHOD'] = 'POST';
	$e                         = thrown( 'PC_Json', function () {
		do_action( 'wc_ajax_pushcart_events' );
	} );
	same( 403, $e->status, 'status without a good nonce' );
	same( 1, count( queued() ), 'queue kept on a bad nonce' );

	$_REQUEST['nonce']         = 'nonce-pushcart_wc_events';
	$_SERVER['REQUEST_METHOD'] = 'GET';
	same( 405, thrown( 'PC_Json', function () {
		do_action( 'wc_ajax_pushcart_events' );
	} )->status, 'status for GET' );

	$_SERVER['REQUEST_METHOD'] = 'POST';
	$e                         = thrown( 'PC_Json', function () {
		do_action( 'wc_ajax_pushcart_events' );
	} );
	same( 200, $e->status, 'status' );
	same( array( 'calls' => array( array( 'track', 'add_to_cart', array( 'product' => expected_mug(), 'cart' => expected_cart() ) ) ) ), $e->data, 'body' );
	same( array( 'calls' => array() ), thrown( 'PC_Json', function () {
		do_action( 'wc_ajax_pushcart_events' );
	} )->data, 'second call' );
} );

test( 'at most 20 events wait in a session', function () {
	boot();
	configure();
	$wc = shop();
	for ( $i = 0; $i < 25; $i++ ) {
		do_action( 'woocommerce_after_cart_item_quantity_update', 'k' . $i, 2, 1, $wc->cart );
	}
	same( 20, count( queued() ), 'queue length' );
} );

test( 'a cart token is made once per cart and renewed when the cart is emptied', function () {
	boot();
	configure();
	$wc = shop();
	unset( $wc->session->data[ Pushcart_WC_Cart_Events::TOKEN_KEY ] );
	$events = Pushcart_WC_Plugin::instance()->cart_events;
	$first  = $events->token();
	check( 1 === preg_match( '/^[a-f0-9]{32}$/', $first ), 'token shape: ' . $first );
	same( $first, $events->token(), 'same token on the next call' );
	do_action( 'woocommerce_add_to_cart', 'k-mug', 11, 1, 0, array(), array() );
	do_action( 'woocommerce_cart_emptied', true );
	same( '', $events->peek_token(), 'token after emptying' );
	same( array(), queued(), 'queue after emptying' );
	check( $first !== $events->token(), 'a new token for the next cart' );
} );

// ---- escaping ----------------------------------------------------------------------------------

test( 'a hostile product title never reaches the page as markup', function () {
	boot();
	configure();
	$wc = shop();
	$wc->cart->cart_contents['k-mug']['data']->name = PC_HOSTILE;
	$GLOBALS['pc']['products'][22]->name            = 'Shirt ' . PC_HOSTILE . ' "Best" & \'Co\'';
	do_action( 'woocommerce_add_to_cart', 'k-shirt', 20, 1, 22, array(), array() );
	$html = output_of( function () {
		do_action( 'wp_footer' );
	} );
	lacks( '<img', $html );
	lacks( 'onerror=alert(1)>', $html );
	contains( '\u0022Best\u0022 \u0026 \u0027Co\u0027', $html );
	$calls = footer_calls( $html );
	same( 'Shirt "Best" & \'Co\'', $calls[0][2]['product']['title'], 'title as text' );
	same( '', $calls[0][2]['cart']['items'][0]['title'], 'an all-markup title is empty text' );
} );

test( 'the script encoder escapes markup even in raw strings', function () {
	$js = Pushcart_WC_Cart_Events::calls_script( array( array( 'track', 'add_to_cart', array( 'product' => array( 'title' => PC_HOSTILE . "\u{2028}<!--" ) ) ) ) );
	same( 0, preg_match( '/[<>]/', $js ), 'no angle brackets: ' . $js );
	same( 'window.pushcart=window.pushcart||[];pushcart.push(["track","add_to_cart",{"product":{"title":"\u003C/script\u003E\u003Cimg src=x onerror=alert(1)\u003E\u2028\u003C!--"}}]);', $js, 'script' );
	same( PC_HOSTILE . "\u{2028}<!--", json_decode( substr( $js, strlen( 'window.pushcart=window.pushcart||[];pushcart.push(' ), -2 ), true )[2]['product']['title'], 'decodes back' );
} );

test( 'entities in product names become text', function () {
	same( 'Fish & Chips – large', Pushcart_WC_Cart_Events::text( 'Fish &amp; Chips &#8211; <b>large</b>' ), 'text' );
	same( str_repeat( 'é', 300 ), Pushcart_WC_Cart_Events::text( str_repeat( 'é', 400 ) ), 'capped at 300 characters' );
} );

// ---- the order link ----------------------------------------------------------------------------

test( 'checkout stores the visitor id from the cookie and the cart token as order meta', function () {
	boot();
	configure();
	shop();
	$_COOKIE['pushcart_vid'] = 'Vid_abc-123XYZ';
	$order                   = new PC_Order();
	do_action( 'woocommerce_checkout_create_order', $order, array() );
	same( array( '_pushcart_visitor_id' => 'Vid_abc-123XYZ', '_pushcart_cart_token' => str_repeat( 'ab', 16 ) ), $order->meta, 'meta' );

	$order = new PC_Order();
	do_action( 'woocommerce_store_api_checkout_update_order_meta', $order );
	same( 'Vid_abc-123XYZ', $order->meta['_pushcart_visitor_id'], 'Store API checkout' );
} );

test( 'a bad visitor cookie is not stored', function () {
	boot();
	configure();
	$wc = shop();
	unset( $wc->session->data[ Pushcart_WC_Cart_Events::TOKEN_KEY ] );
	foreach ( array( '<script>alert(1)</script>', 'short', str_repeat( 'a', 65 ), 'has space inside', "abc\\'defgh" ) as $bad ) {
		$_COOKIE['pushcart_vid'] = $bad;
		$order                   = new PC_Order();
		do_action( 'woocommerce_checkout_create_order', $order, array() );
		same( array(), $order->meta, 'meta for ' . $bad );
	}
	same( '', Pushcart_WC_Cart_Events::sanitize_visitor_id( array( 'x' ) ), 'an array' );
} );

// ---- settings ----------------------------------------------------------------------------------

test( 'the URL sanitizer accepts https and local http, and refuses the rest', function () {
	$cases = array(
		'https://push.example.com'            => 'https://push.example.com',
		' https://Push.Example.com/ '         => 'https://push.example.com',
		'https://push.example.com:8443/a/b/'  => 'https://push.example.com:8443/a/b',
		'http://localhost:5000'               => 'http://localhost:5000',
		'http://127.0.0.1:5000'               => 'http://127.0.0.1:5000',
		'http://[::1]:5000'                   => 'http://[::1]:5000',
		''                                    => '',
		'http://push.example.com'             => null,
		'javascript:alert(1)'                 => null,
		'ftp://push.example.com'              => null,
		'https://user:pw@push.example.com'    => null,
		'https://push.example.com/?x=1'       => null,
		'https://push.example.com/#top'       => null,
		'https://push.example.com/"><script>' => null,
		'https://push.example.com/a b'        => null,
		'//push.example.com'                  => null,
		'https://-bad-.example'               => null,
		'https://push.example.com:99999'      => null,
		'https://localhost.evil.example'      => 'https://localhost.evil.example',
		'http://localhost.evil.example'       => null,
	);
	foreach ( $cases as $raw => $want ) {
		same( $want, Pushcart_WC_Settings::sanitize_url( $raw ), var_export( $raw, true ) );
	}
	same( null, Pushcart_WC_Settings::sanitize_url( array( 'https://x.example' ) ), 'an array' );
} );

test( 'saving bad settings keeps the stored values and reports each error', function () {
	boot();
	configure();
	do_action( 'admin_init' );
	update_option( Pushcart_WC_Settings::OPTION, array( 'url' => 'http://push.example.com', 'public_key' => 'bad key!', 'secret' => 'has spaces in it' ) );
	same( array( 'url' => PC_URL, 'public_key' => PC_KEY, 'secret' => PC_SECRET ), get_option( Pushcart_WC_Settings::OPTION ), 'stored' );
	same( array( 'pushcart_url', 'pushcart_public_key', 'pushcart_secret' ), array_column( $GLOBALS['pc']['settings_errors'], 'code' ), 'errors' );
	same( array( 'url' => PC_URL, 'public_key' => PC_KEY, 'secret' => PC_SECRET ), Pushcart_WC_Settings::sanitize( 'not an array' ), 'non-array input' );
	same( PC_KEY, Pushcart_WC_Settings::sanitize( array( 'public_key' => str_repeat( 'k', 65 ) ) )['public_key'], 'a 65-character key' );
} );

test( 'saving good settings stores them clean; an empty secret field keeps the secret, the box clears it', function () {
	boot();
	configure();
	do_action( 'admin_init' );
	update_option( Pushcart_WC_Settings::OPTION, array( 'url' => 'https://other.example/push/', 'public_key' => ' abc_DEF-9 ', 'secret' => '', 'extra' => 'dropped' ) );
	same( array( 'url' => 'https://other.example/push', 'public_key' => 'abc_DEF-9', 'secret' => PC_SECRET ), get_option( Pushcart_WC_Settings::OPTION ), 'kept secret' );
	update_option( Pushcart_WC_Settings::OPTION, array( 'url' => 'https://other.example/push', 'public_key' => 'abc_DEF-9', 'secret' => 'new_secret_value_1234' ) );
	same( 'new_secret_value_1234', Pushcart_WC_Settings::get( 'secret' ), 'replaced secret' );
	update_option( Pushcart_WC_Settings::OPTION, array( 'url' => 'https://other.example/push', 'public_key' => 'abc_DEF-9', 'secret' => 'ignored_because_cleared', 'secret_clear' => '1' ) );
	same( '', Pushcart_WC_Settings::get( 'secret' ), 'cleared secret' );
	same( array(), $GLOBALS['pc']['settings_errors'], 'no errors' );
} );

const PC_CONNECT = PC_URL . '/connect/' . PC_KEY . '.tok_0123456789abcdefghijKLMN';

function pushcart_answers( $status, $body ) {
	$GLOBALS['pc']['http_response'] = array(
		'response' => array( 'code' => $status ),
		'body'     => wp_json_encode( $body ),
	);
}

test( 'a connect value is sent with the site origin and fills the URL, the key and the secret', function () {
	boot();
	do_action( 'admin_init' );
	$GLOBALS['pc']['home'] = 'https://Shop.Example:8443/wp/';
	pushcart_answers( 200, array( 'public_key' => PC_KEY, 'webhook_secret' => PC_SECRET, 'widget_url' => PC_URL . '/widget.js' ) );
	update_option( Pushcart_WC_Settings::OPTION, array( 'connect' => ' ' . PC_CONNECT . ' ', 'url' => '', 'public_key' => '', 'secret' => '' ) );
	same( array( 'url' => PC_URL, 'public_key' => PC_KEY, 'secret' => PC_SECRET ), get_option( Pushcart_WC_Settings::OPTION ), 'stored' );
	same( 1, count( $GLOBALS['pc']['http'] ), 'requests' );
	$request = $GLOBALS['pc']['http'][0];
	same( PC_URL . '/v1/connect', $request['url'], 'url' );
	same( 0, $request['args']['redirection'], 'no redirects followed' );
	same( array( 'token' => PC_CONNECT, 'origin' => 'https://shop.example:8443', 'platform' => 'woocommerce' ), json_decode( $request['args']['body'], true ), 'body' );
	same( array( 'pushcart_connected' ), array_column( $GLOBALS['pc']['settings_errors'], 'code' ), 'notice' );
	// WordPress may sanitize twice in one save: the value is spent once.
	Pushcart_WC_Settings::sanitize( array( 'connect' => PC_CONNECT ) );
	same( 1, count( $GLOBALS['pc']['http'] ), 'requests after a second sanitize' );
} );

test( 'a refused or unreachable connect keeps the settings and says why', function () {
	boot();
	configure();
	do_action( 'admin_init' );
	pushcart_answers( 401, array( 'error' => array( 'code' => 'invalid_connect_token', 'message' => 'this connect value is not valid <b>x</b>' ) ) );
	update_option( Pushcart_WC_Settings::OPTION, array( 'connect' => PC_CONNECT ) );
	same( array( 'url' => PC_URL, 'public_key' => PC_KEY, 'secret' => PC_SECRET ), get_option( Pushcart_WC_Settings::OPTION ), 'kept' );
	contains( 'this connect value is not valid x', $GLOBALS['pc']['settings_errors'][0]['message'], 'message' );

	boot();
	configure();
	do_action( 'admin_init' );
	$GLOBALS['pc']['http_response'] = null; // no answer at all
	update_option( Pushcart_WC_Settings::OPTION, array( 'connect' => PC_CONNECT ) );
	same( PC_SECRET, Pushcart_WC_Settings::get( 'secret' ), 'kept secret' );
	contains( 'could not be reached', $GLOBALS['pc']['settings_errors'][0]['message'], 'message' );

	boot();
	do_action( 'admin_init' );
	pushcart_answers( 200, array( 'public_key' => 'another_shop', 'webhook_secret' => PC_SECRET ) );
	update_option( Pushcart_WC_Settings::OPTION, array( 'connect' => PC_CONNECT ) );
	same( '', Pushcart_WC_Settings::get( 'public_key' ), 'an answer for another shop is not kept' );
} );

test( 'a value that is not a connect value is refused without a request', function () {
	foreach ( array( 'hello', 'http://push.example.com/connect/' . PC_KEY . '.tok_0123456789abcdefghijKLMN', PC_URL . '/connect/bad key.tok_0123456789abcdefghij', PC_URL . '?x=1/connect/' . PC_KEY . '.tok_0123456789abcdefghijKLMN' ) as $value ) {
		boot();
		do_action( 'admin_init' );
		update_option( Pushcart_WC_Settings::OPTION, array( 'connect' => $value ) );
		same( array(), $GLOBALS['pc']['http'], 'requests for ' . $value );
		same( array( 'pushcart_connect' ), array_column( $GLOBALS['pc']['settings_errors'], 'code' ), 'errors for ' . $value );
	}
} );

test( 'the settings page escapes what it prints and never prints the secret', function () {
	boot();
	$GLOBALS['pc']['options'][ Pushcart_WC_Settings::OPTION ] = array( 'url' => PC_URL . '/"><b>x', 'public_key' => PC_KEY, 'secret' => PC_SECRET );
	$GLOBALS['pc']['wc'] = new WooCommerce();
	do_action( 'admin_init' );
	$admin = Pushcart_WC_Plugin::instance()->admin;
	$html  = output_of( array( $admin, 'render' ) );
	lacks( PC_SECRET, $html, 'page' );
	lacks( substr( PC_SECRET, 0, 8 ), $html, 'page' );
	contains( '<code>…WXYZ</code>', $html, 'page' );
	contains( 'name="pushcart_wc_settings[secret]" value=""', $html, 'page' );
	contains( 'value="https://push.example.com/&quot;&gt;&lt;b&gt;x"', $html, 'page' );
	lacks( '"><b>x', $html, 'page' );
	contains( '<input type="hidden" name="option_page" value="pushcart_wc" />', $html, 'page' );
	contains( 'name="_wpnonce" value="nonce-pushcart_wc_webhooks"', $html, 'page' );
	same( '…', ( function () {
		$GLOBALS['pc']['options'][ Pushcart_WC_Settings::OPTION ]['secret'] = 'short_secret';
		return Pushcart_WC_Settings::secret_hint();
	} )(), 'hint for a short secret' );

	$GLOBALS['pc']['caps'] = array();
	same( 403, thrown( 'PC_Die', array( $admin, 'render' ) )->status, 'page without the capability' );
} );

// ---- webhooks ----------------------------------------------------------------------------------

test( 'the button makes the three webhooks through WC_Webhook, and pressing it again updates them', function () {
	boot();
	configure();
	$webhooks = Pushcart_WC_Plugin::instance()->webhooks;
	same( 'created', $webhooks->sync( 7 ), 'result' );
	$ids = get_option( Pushcart_WC_Webhooks::OPTION );
	same( array( 'order.created', 'order.updated', 'product.updated' ), array_keys( $ids ), 'topics' );
	foreach ( $ids as $topic => $id ) {
		$hook = wc_get_webhook( $id );
		same(
			array(
				'status'        => 'active',
				'failure_count' => 0,
				'name'          => 'Pushcart: ' . $topic,
				'topic'         => $topic,
				'delivery_url'  => 'https://push.example.com/v1/integrations/woocommerce/shop_Key-1',
				'secret'        => PC_SECRET,
				'api_version'   => 'wp_api_v3',
				'user_id'       => 7,
			),
			$hook->props,
			'webhook ' . $topic
		);
	}
	$ids['order.updated'] = $ids['order.updated'];
	wc_get_webhook( $ids['order.updated'] )->props['status'] = 'disabled'; // WooCommerce disables one after failures
	$webhooks->sync( 7 );
	same( $ids, get_option( Pushcart_WC_Webhooks::OPTION ), 'same ids' );
	same( 3, count( $GLOBALS['pc']['webhooks'] ), 'no new webhooks' );
	same( 'active', wc_get_webhook( $ids['order.updated'] )->props['status'], 'active again' );
	same( array( true, true, true ), array_column( $webhooks->statuses(), 'matches' ), 'statuses' );
} );

test( 'no webhooks without a secret; statuses say so', function () {
	boot();
	configure( '' );
	$webhooks = Pushcart_WC_Plugin::instance()->webhooks;
	same( 'not_configured', $webhooks->sync( 7 ), 'result' );
	same( array(), $GLOBALS['pc']['webhooks'], 'webhooks' );
	same( array( false, false, false ), array_column( $webhooks->statuses(), 'exists' ), 'statuses' );
} );

test( 'the webhook button checks the capability and the nonce, then redirects with the outcome', function () {
	boot();
	configure();
	$GLOBALS['pc']['wc'] = new WooCommerce();
	$GLOBALS['pc']['caps'] = array();
	same( 403, thrown( 'PC_Die', function () {
		do_action( 'admin_post_pushcart_wc_webhooks' );
	} )->status, 'without the capability' );
	$GLOBALS['pc']['caps'] = array( 'manage_woocommerce' => true );
	$_REQUEST['_wpnonce']  = 'forged';
	thrown( 'PC_Die', function () {
		do_action( 'admin_post_pushcart_wc_webhooks' );
	} );
	same( array(), $GLOBALS['pc']['webhooks'], 'nothing made on a bad nonce' );
	$_REQUEST['_wpnonce'] = 'nonce-pushcart_wc_webhooks';
	$redirect             = thrown( 'PC_Redirect', function () {
		do_action( 'admin_post_pushcart_wc_webhooks' );
	} );
	same( 'https://shop.example/wp-admin/admin.php?page=pushcart-wc&pushcart_webhooks=created', $redirect->location, 'redirect' );
	same( 3, count( $GLOBALS['pc']['webhooks'] ), 'webhooks made' );
} );

test( 'a changed secret reaches the webhooks already made', function () {
	boot();
	configure();
	do_action( 'admin_init' );
	Pushcart_WC_Plugin::instance()->webhooks->sync( 7 );
	update_option( Pushcart_WC_Settings::OPTION, array( 'url' => PC_URL, 'public_key' => PC_KEY, 'secret' => 'rotated_secret_5678' ) );
	same( array( 'rotated_secret_5678' ), array_values( array_unique( array_map( function ( $hook ) {
		return $hook->props['secret'];
	}, $GLOBALS['pc']['webhooks'] ) ) ), 'secrets' );
} );

// ---- uninstall ---------------------------------------------------------------------------------

test( 'uninstall removes the options and the webhooks', function () {
	boot();
	configure();
	Pushcart_WC_Plugin::instance()->webhooks->sync( 7 );
	$GLOBALS['pc']['options']['unrelated'] = 'kept';
	defined( 'WP_UNINSTALL_PLUGIN' ) || define( 'WP_UNINSTALL_PLUGIN', 'pushcart-for-woocommerce/pushcart-for-woocommerce.php' );
	include dirname( __DIR__ ) . '/pushcart-for-woocommerce/uninstall.php';
	same( array( 'unrelated' => 'kept' ), $GLOBALS['pc']['options'], 'options' );
	same( array(), $GLOBALS['pc']['webhooks'], 'webhooks' );
} );

// ---- the web app manifest ----------------------------------------------------------------------

/**
 * The head as WordPress prints it: wp_head's callbacks in their order, with `$theme` printing
 * what a theme or another plugin adds there.
 */
function head_with( $theme ) {
	add_action( 'wp_head', function () use ( $theme ) {
		echo $theme;
	} );
	return output_of( function () {
		do_action( 'wp_head' );
	} );
}

test( 'the manifest: site title, home as start, standalone, theme colour, the Site Icon at 192 and 512 px', function () {
	boot();
	$GLOBALS['pc']['blogname']  = 'Linen & Co. Home Goods';
	$GLOBALS['pc']['site_icon'] = 42;
	same(
		array(
			'name'             => 'Linen & Co. Home Goods',
			'short_name'       => 'Linen & Co.',
			'start_url'        => 'https://shop.example/',
			'scope'            => '/',
			'display'          => 'standalone',
			'background_color' => '#ffffff',
			'theme_color'      => '#ffffff',
			'icons'            => array(
				array( 'src' => 'https://shop.example/wp-content/uploads/icon-192x192.png', 'sizes' => '192x192', 'type' => 'image/png' ),
				array( 'src' => 'https://shop.example/wp-content/uploads/icon-512x512.png', 'sizes' => '512x512', 'type' => 'image/png' ),
			),
		),
		Pushcart_WC_Manifest::manifest(),
		'manifest'
	);
	$GLOBALS['pc']['site_icon'] = null;
	check( ! isset( Pushcart_WC_Manifest::manifest()['icons'] ), 'no icons without a Site Icon' );
	same( 'Café', Pushcart_WC_Manifest::short_name( 'Café' ), 'a short name as it is' );
	same( 'Grüne Wiese', Pushcart_WC_Manifest::short_name( 'Grüne Wiese Gartenbedarf' ), 'cut at a word' );
	same( 'Gartenbedarf', Pushcart_WC_Manifest::short_name( 'Gartenbedarfshandel' ), 'cut in the word when it has no space' );
} );

test( 'the manifest setting: on by default, a ticked box, a valid colour; an unticked box turns it off', function () {
	boot();
	same( array( 'enabled' => true, 'theme_color' => '#ffffff' ), Pushcart_WC_Manifest::get(), 'defaults' );
	same( array( 'enabled' => true, 'theme_color' => '#1f6feb' ), Pushcart_WC_Manifest::sanitize( array( 'form' => '1', 'enabled' => '1', 'theme_color' => '#1F6FEB' ) ), 'ticked' );
	same( array( 'enabled' => false, 'theme_color' => '#ffffff' ), Pushcart_WC_Manifest::sanitize( array( 'form' => '1', 'theme_color' => 'red;}' ) ), 'unticked, bad colour kept' );
	same( 'pushcart_theme_color', $GLOBALS['pc']['settings_errors'][0]['code'], 'the bad colour is named' );
} );

test( 'the manifest is linked in the head only where nothing else links one', function () {
	boot();
	configure();
	$link = '<link rel="manifest" href="https://shop.example/pushcart-manifest.webmanifest" id="pushcart-wc-manifest" />';
	$GLOBALS['pc']['options']['permalink_structure'] = '/%postname%/';
	contains( $link, head_with( '<title>Shop</title>' ), 'a head without a manifest' );

	boot();
	configure();
	$GLOBALS['pc']['options']['permalink_structure'] = '';
	contains( '<link rel="manifest" href="https://shop.example/?pushcart_manifest=1"', head_with( '' ), 'plain permalinks' );

	foreach ( array( '<link rel="manifest" href="/theme.webmanifest">', "<link href='/m.json' rel='Manifest'>", '<link rel=manifest href=/m.json>' ) as $theirs ) {
		boot();
		configure();
		$head = head_with( $theirs );
		same( $theirs, $head, 'a head that links its own is passed on unchanged' );
	}

	boot();
	configure();
	add_filter( 'pushcart_wc_site_has_manifest', function () {
		return true;
	} );
	same( '', head_with( '' ), 'a theme that says it has one' );

	boot();
	configure();
	$GLOBALS['pc']['options'][ Pushcart_WC_Manifest::OPTION ] = array( 'enabled' => false );
	same( '', head_with( '' ), 'the setting off' );

	boot();
	same( '', head_with( '' ), 'Pushcart not set up' );
} );

// ---- run ---------------------------------------------------------------------------------------

$passed = 0;
$failed = 0;
foreach ( $GLOBALS['pc_tests'] as $name => $body ) {
	try {
		$body();
		$passed++;
		echo 'ok   ', $name, "\n";
	} catch ( Throwable $e ) {
		$failed++;
		echo 'FAIL ', $name, "\n     ", str_replace( "\n", "\n     ", $e->getMessage() ), "\n";
		if ( ! $e instanceof PC_Assertion_Failed ) {
			echo '     at ', $e->getFile(), ':', $e->getLine(), "\n";
		}
	}
}
echo "\n{$passed} passed, {$failed} failed\n";
exit( $failed ? 1 : 0 );
