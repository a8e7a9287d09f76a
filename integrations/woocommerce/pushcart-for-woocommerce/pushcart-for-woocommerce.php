<?php
/**
 * Plugin Name:       Pushcart for WooCommerce
 * Description:       Adds the Pushcart widget and service worker to a WooCommerce shop, sends cart and checkout events from WooCommerce's own hooks, links orders to Pushcart visitors, sets up the order webhooks and links a web app manifest where the site has none.
 * Version:           0.3.0
 * Requires at least: 6.1
 * Requires PHP:      7.4
 * Author:            Pushcart
 * License:           GPL-2.0-or-later
 * License URI:       https://www.gnu.org/licenses/gpl-2.0.html
 * Text Domain:       pushcart-for-woocommerce
 * WC requires at least: 8.0
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

define( 'PUSHCART_WC_VERSION', '0.3.0' );
define( 'PUSHCART_WC_FILE', __FILE__ );
define( 'PUSHCART_WC_DIR', __DIR__ );

require_once __DIR__ . '/includes/class-pushcart-wc-settings.php';
require_once __DIR__ . '/includes/class-pushcart-wc-connect.php';
require_once __DIR__ . '/includes/class-pushcart-wc-cart-events.php';
require_once __DIR__ . '/includes/class-pushcart-wc-frontend.php';
require_once __DIR__ . '/includes/class-pushcart-wc-manifest.php';
require_once __DIR__ . '/includes/class-pushcart-wc-webhooks.php';
require_once __DIR__ . '/includes/class-pushcart-wc-admin.php';

/**
 * Wires the plugin's parts to WordPress. Nothing runs at include time but hook registration.
 */
final class Pushcart_WC_Plugin {

	/**
	 * The one instance, so that the activation hooks and the tests reach the same objects.
	 *
	 * @var Pushcart_WC_Plugin|null
	 */
	private static $instance = null;

	/** @var Pushcart_WC_Cart_Events */
	public $cart_events;

	/** @var Pushcart_WC_Frontend */
	public $frontend;

	/** @var Pushcart_WC_Webhooks */
	public $webhooks;

	/** @var Pushcart_WC_Admin */
	public $admin;

	/**
	 * The plugin, built and hooked on first call.
	 *
	 * @return Pushcart_WC_Plugin
	 */
	public static function instance() {
		if ( null === self::$instance ) {
			self::$instance = new self();
			self::$instance->hook();
		}
		return self::$instance;
	}

	/**
	 * Builds the parts.
	 */
	private function __construct() {
		$this->cart_events = new Pushcart_WC_Cart_Events();
		$this->frontend    = new Pushcart_WC_Frontend( $this->cart_events );
		$this->webhooks    = new Pushcart_WC_Webhooks();
		$this->admin       = new Pushcart_WC_Admin( $this->webhooks );
	}

	/**
	 * Registers every hook of every part.
	 */
	private function hook() {
		add_action( 'before_woocommerce_init', array( __CLASS__, 'declare_compatibility' ) );
		Pushcart_WC_Settings::hook();
		$this->cart_events->hook();
		$this->frontend->hook();
		Pushcart_WC_Manifest::hook();
		$this->webhooks->hook();
		$this->admin->hook();
	}

	/**
	 * Tells WooCommerce that the plugin works with its order tables (it only uses the order CRUD
	 * API) and with the block cart and checkout (its order meta has a Store API hook as well).
	 */
	public static function declare_compatibility() {
		if ( class_exists( '\Automattic\WooCommerce\Utilities\FeaturesUtil' ) ) {
			\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'custom_order_tables', PUSHCART_WC_FILE, true );
			\Automattic\WooCommerce\Utilities\FeaturesUtil::declare_compatibility( 'cart_checkout_blocks', PUSHCART_WC_FILE, true );
		}
	}

	/**
	 * Activation: add the /pushcart-sw.js and /pushcart-manifest.webmanifest rules and rebuild the
	 * rewrite rules with them.
	 */
	public static function activate() {
		Pushcart_WC_Frontend::add_rewrite_rule();
		Pushcart_WC_Manifest::add_rewrite_rule();
		flush_rewrite_rules( false );
	}

	/**
	 * Deactivation: the rules were added on this request's `init`, so take them out before
	 * rebuilding, or the flush would write them back.
	 */
	public static function deactivate() {
		Pushcart_WC_Frontend::remove_rewrite_rule();
		Pushcart_WC_Manifest::remove_rewrite_rule();
		flush_rewrite_rules( false );
	}
}

register_activation_hook( __FILE__, array( 'Pushcart_WC_Plugin', 'activate' ) );
register_deactivation_hook( __FILE__, array( 'Pushcart_WC_Plugin', 'deactivate' ) );
add_action( 'plugins_loaded', array( 'Pushcart_WC_Plugin', 'instance' ) );
