<?php
/**
 * Cart and checkout events from WooCommerce's own hooks.
 *
 * A cart change often happens on a request whose page the browser never runs: a form post
 * followed by a redirect, a wc-ajax or Store API call, the cart page's XHR reload. So each
 * event is kept in the visitor's WooCommerce session and handed to the widget by whichever
 * comes first: the footer of the next full page, or the small endpoint that the plugin's
 * script calls after WooCommerce's AJAX cart events. Either one takes the events out of the
 * session, so each is sent once. The cart itself is read when the events are handed over,
 * after WooCommerce has recalculated its totals.
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Queues cart events, builds the widget's cart shape and stores the order meta at checkout.
 */
final class Pushcart_WC_Cart_Events {

	/** WooCommerce session keys (the session lower-cases its keys). */
	const TOKEN_KEY = 'pushcart_cart_token';
	const QUEUE_KEY = 'pushcart_pending';

	/** Order meta keys, carried to Pushcart in the order webhooks' meta_data. */
	const META_VISITOR = '_pushcart_visitor_id';
	const META_TOKEN   = '_pushcart_cart_token';

	/** The first-party cookie that the plugin's script sets from the widget's visitor id. */
	const VISITOR_COOKIE = 'pushcart_vid';

	/** The widget's rule for a visitor id. */
	const VISITOR_PATTERN = '/^[A-Za-z0-9_-]{8,64}$/';

	/** At most this many events wait in a session; older ones are dropped. */
	const MAX_QUEUE = 20;

	/** The server reads at most 100 cart items. */
	const MAX_ITEMS = 100;

	/**
	 * The last event queued on this request, so that one cart change reported by two hooks
	 * (adding a product already in the cart fires the quantity hook, then the add hook) is
	 * queued once.
	 *
	 * @var array{type: string, key: string}|null
	 */
	private $last = null;

	/**
	 * Whether checkout_started was queued on this request (two hooks may report it).
	 *
	 * @var bool
	 */
	private $checkout_queued = false;

	/**
	 * Registers the WooCommerce hooks.
	 */
	public function hook() {
		add_action( 'woocommerce_add_to_cart', array( $this, 'on_add_to_cart' ), 30, 4 );
		add_action( 'woocommerce_cart_item_removed', array( $this, 'on_item_removed' ), 30, 2 );
		add_action( 'woocommerce_after_cart_item_quantity_update', array( $this, 'on_quantity_update' ), 30, 4 );
		add_action( 'template_redirect', array( $this, 'on_checkout_page' ), 20 );
		add_action( 'woocommerce_before_checkout_form', array( $this, 'on_checkout_form' ), 5 );
		add_action( 'woocommerce_cart_emptied', array( $this, 'on_cart_emptied' ) );
		add_action( 'woocommerce_checkout_create_order', array( $this, 'on_create_order' ), 10, 1 );
		add_action( 'woocommerce_store_api_checkout_update_order_meta', array( $this, 'on_create_order' ), 10, 1 );
	}

	// ---- hooks ---------------------------------------------------------------------------------

	/**
	 * `woocommerce_add_to_cart`: the added product as `product`.
	 *
	 * @param string $cart_item_key The cart line.
	 * @param int    $product_id    The product.
	 * @param int    $quantity      How many were added.
	 * @param int    $variation_id  The variation, or 0.
	 */
	public function on_add_to_cart( $cart_item_key, $product_id = 0, $quantity = 1, $variation_id = 0 ) {
		$product = $this->product_for( $variation_id ? $variation_id : $product_id );
		$this->queue( 'add_to_cart', $product, (string) $cart_item_key );
	}

	/**
	 * `woocommerce_cart_item_removed`: the removed line's product as `product`. WooCommerce keeps
	 * the line in removed_cart_contents without its product object, so the product is loaded.
	 *
	 * @param string $cart_item_key The cart line.
	 * @param object $cart          The WC_Cart.
	 */
	public function on_item_removed( $cart_item_key, $cart = null ) {
		$line = ( is_object( $cart ) && isset( $cart->removed_cart_contents[ $cart_item_key ] ) ) ? $cart->removed_cart_contents[ $cart_item_key ] : array();
		$id   = ! empty( $line['variation_id'] ) ? $line['variation_id'] : ( isset( $line['product_id'] ) ? $line['product_id'] : 0 );
		$this->queue( 'remove_from_cart', $this->product_for( $id ), (string) $cart_item_key );
	}

	/**
	 * `woocommerce_after_cart_item_quantity_update`: more is add_to_cart, fewer is
	 * remove_from_cart (a quantity of 0 goes through the removal hook instead).
	 *
	 * @param string $cart_item_key The cart line.
	 * @param int    $quantity      The new quantity.
	 * @param int    $old_quantity  The quantity before.
	 * @param object $cart          The WC_Cart.
	 */
	public function on_quantity_update( $cart_item_key, $quantity, $old_quantity = 0, $cart = null ) {
		$quantity     = (int) $quantity;
		$old_quantity = (int) $old_quantity;
		if ( $quantity === $old_quantity ) {
			return;
		}
		$line    = ( is_object( $cart ) && isset( $cart->cart_contents[ $cart_item_key ] ) ) ? $cart->cart_contents[ $cart_item_key ] : array();
		$product = isset( $line['data'] ) && is_object( $line['data'] ) ? self::product_data( $line['data'] ) : null;
		$this->queue( $quantity > $old_quantity ? 'add_to_cart' : 'remove_from_cart', $product, (string) $cart_item_key );
	}

	/**
	 * `template_redirect`: the checkout page (classic or block), not its order-pay and
	 * order-received endpoints, with something in the cart.
	 */
	public function on_checkout_page() {
		if ( ! function_exists( 'is_checkout' ) || ! is_checkout() ) {
			return;
		}
		if ( function_exists( 'is_wc_endpoint_url' ) && is_wc_endpoint_url() ) {
			return;
		}
		$this->queue_checkout();
	}

	/**
	 * `woocommerce_before_checkout_form`: the checkout shortcode on a page that is not the
	 * shop's checkout page.
	 */
	public function on_checkout_form() {
		$this->queue_checkout();
	}

	/**
	 * `woocommerce_cart_emptied` (after an order is paid, or on logout): the next cart is a new
	 * one with a new token, and what was still waiting for the old one is moot.
	 */
	public function on_cart_emptied() {
		$session = self::session();
		if ( $session ) {
			$session->set( self::TOKEN_KEY, null );
			$session->set( self::QUEUE_KEY, null );
		}
	}

	/**
	 * `woocommerce_checkout_create_order` and the Store API's
	 * `woocommerce_store_api_checkout_update_order_meta`: the visitor id from the first-party
	 * cookie and the cart token, as order meta. Both hooks run before the order is saved.
	 *
	 * @param object $order The WC_Order.
	 */
	public function on_create_order( $order ) {
		if ( ! is_object( $order ) || ! method_exists( $order, 'update_meta_data' ) ) {
			return;
		}
		$raw     = isset( $_COOKIE[ self::VISITOR_COOKIE ] ) ? wp_unslash( $_COOKIE[ self::VISITOR_COOKIE ] ) : ''; // phpcs:ignore WordPress.Security.ValidatedSanitizedInput.InputNotSanitized -- validated just below.
		$visitor = self::sanitize_visitor_id( $raw );
		if ( '' !== $visitor ) {
			$order->update_meta_data( self::META_VISITOR, $visitor );
		}
		$token = $this->peek_token();
		if ( '' !== $token ) {
			$order->update_meta_data( self::META_TOKEN, $token );
		}
	}

	// ---- the queue -----------------------------------------------------------------------------

	/**
	 * Puts an event in the visitor's session. Nothing is queued while the plugin is not set up.
	 *
	 * @param string     $type    add_to_cart, remove_from_cart or checkout_started.
	 * @param array|null $product The product shape, or null.
	 * @param string     $key     The cart line it is about ('' for the whole cart).
	 */
	public function queue( $type, $product = null, $key = '' ) {
		$session = self::session();
		if ( ! $session || ! Pushcart_WC_Settings::is_configured() ) {
			return;
		}
		$queue = $session->get( self::QUEUE_KEY, array() );
		$queue = is_array( $queue ) ? $queue : array();
		if ( '' !== $key && null !== $this->last && $this->last['type'] === $type && $this->last['key'] === $key && $queue ) {
			array_pop( $queue );
		}
		$event = array( 'type' => $type );
		if ( $product ) {
			$event['product'] = $product;
		}
		$queue[] = $event;
		if ( count( $queue ) > self::MAX_QUEUE ) {
			$queue = array_slice( $queue, -self::MAX_QUEUE );
		}
		$session->set( self::QUEUE_KEY, $queue );
		$this->last = array(
			'type' => $type,
			'key'  => $key,
		);
	}

	/**
	 * Takes the waiting events out of the session and returns them as widget calls,
	 * `["track", type, {"product"?: {...}, "cart": {...}}]`, each with the cart as it is now.
	 *
	 * @return array[]
	 */
	public function drain_calls() {
		$session = self::session();
		if ( ! $session ) {
			return array();
		}
		$queue = $session->get( self::QUEUE_KEY, array() );
		if ( ! is_array( $queue ) || ! $queue ) {
			return array();
		}
		$session->set( self::QUEUE_KEY, null );
		$cart = $this->cart_data();
		if ( null === $cart ) {
			return array();
		}
		$calls = array();
		foreach ( $queue as $event ) {
			if ( ! is_array( $event ) || ! isset( $event['type'] ) || ! in_array( $event['type'], array( 'add_to_cart', 'remove_from_cart', 'checkout_started' ), true ) ) {
				continue;
			}
			$data = array();
			if ( ! empty( $event['product'] ) && is_array( $event['product'] ) ) {
				$data['product'] = $event['product'];
			}
			$data['cart'] = $cart;
			$calls[]      = array( 'track', $event['type'], $data );
		}
		return $calls;
	}

	/**
	 * Widget calls as one script body, safe inside a `<script>` element: wp_json_encode with
	 * `<`, `>`, `&`, `'` and `"` inside strings written as \u escapes.
	 *
	 * @param array[] $calls From drain_calls().
	 * @return string '' for no calls.
	 */
	public static function calls_script( array $calls ) {
		if ( ! $calls ) {
			return '';
		}
		$js = 'window.pushcart=window.pushcart||[];';
		foreach ( $calls as $call ) {
			$json = wp_json_encode( $call, self::json_flags() );
			if ( false === $json || null === $json ) {
				continue;
			}
			$js .= 'pushcart.push(' . $json . ');';
		}
		return $js;
	}

	/**
	 * The JSON flags for anything printed inside a script element.
	 *
	 * @return int
	 */
	public static function json_flags() {
		return JSON_HEX_TAG | JSON_HEX_AMP | JSON_HEX_APOS | JSON_HEX_QUOT | JSON_UNESCAPED_SLASHES | JSON_INVALID_UTF8_SUBSTITUTE;
	}

	// ---- the cart shape ------------------------------------------------------------------------

	/**
	 * The cart as the widget's `cart` (CONTRACT §5): token, total as "12.34", currency,
	 * item_count, checkout_url and items.
	 *
	 * @return array|null Null without a cart or a session.
	 */
	public function cart_data() {
		$wc = function_exists( 'WC' ) ? WC() : null;
		if ( ! $wc || empty( $wc->cart ) ) {
			return null;
		}
		$token = $this->token();
		if ( '' === $token ) {
			return null;
		}
		$cart  = $wc->cart;
		$items = array();
		foreach ( $cart->get_cart() as $line ) {
			if ( count( $items ) >= self::MAX_ITEMS ) {
				break;
			}
			if ( empty( $line['data'] ) || ! is_object( $line['data'] ) ) {
				continue;
			}
			$product = $line['data'];
			$item    = array(
				'id'       => (string) ( ! empty( $line['variation_id'] ) ? $line['variation_id'] : ( isset( $line['product_id'] ) ? $line['product_id'] : $product->get_id() ) ),
				'title'    => self::text( $product->get_name() ),
				'price'    => self::money( wc_get_price_to_display( $product ) ),
				'quantity' => (int) ( isset( $line['quantity'] ) ? $line['quantity'] : 1 ),
				'url'      => (string) $product->get_permalink(),
			);
			$image = self::image_url( $product );
			if ( '' !== $image ) {
				$item['image'] = $image;
			}
			$items[] = $item;
		}
		return array(
			'token'        => $token,
			'total'        => self::money( $cart->get_total( 'edit' ) ),
			'currency'     => (string) get_woocommerce_currency(),
			'item_count'   => (int) $cart->get_cart_contents_count(),
			'checkout_url' => (string) wc_get_checkout_url(),
			'items'        => $items,
		);
	}

	/**
	 * A product as the widget's `product`: id, title, price, currency, url and image.
	 *
	 * @param object $product A WC_Product.
	 * @return array
	 */
	public static function product_data( $product ) {
		$out   = array(
			'id'       => (string) $product->get_id(),
			'title'    => self::text( $product->get_name() ),
			'price'    => self::money( wc_get_price_to_display( $product ) ),
			'currency' => (string) get_woocommerce_currency(),
			'url'      => (string) $product->get_permalink(),
		);
		$image = self::image_url( $product );
		if ( '' !== $image ) {
			$out['image'] = $image;
		}
		return $out;
	}

	/**
	 * The product shape for a product id, or null when there is no such product.
	 *
	 * @param int $id A product or variation id.
	 * @return array|null
	 */
	private function product_for( $id ) {
		$product = $id ? wc_get_product( $id ) : null;
		return $product ? self::product_data( $product ) : null;
	}

	/**
	 * An amount as the contract's money string: two decimals, a dot, no grouping.
	 *
	 * @param mixed $amount A number or numeric string.
	 * @return string
	 */
	public static function money( $amount ) {
		$value = is_numeric( $amount ) ? (float) $amount : 0.0;
		return number_format( max( 0.0, $value ), 2, '.', '' );
	}

	/**
	 * A product name as plain text: entities decoded, tags removed, at most 300 characters.
	 * Push notifications show text, never HTML.
	 *
	 * @param mixed $value The name.
	 * @return string
	 */
	public static function text( $value ) {
		$text = wp_strip_all_tags( html_entity_decode( (string) $value, ENT_QUOTES | ENT_HTML5, 'UTF-8' ) );
		$text = trim( (string) preg_replace( '/\s+/u', ' ', $text ) );
		// Cut on characters, not bytes, without needing mbstring.
		return preg_match( '/^.{0,300}/us', $text, $m ) ? $m[0] : '';
	}

	/**
	 * The product's thumbnail URL, or ''.
	 *
	 * @param object $product A WC_Product.
	 * @return string
	 */
	private static function image_url( $product ) {
		$image_id = (int) $product->get_image_id();
		$url      = $image_id ? wp_get_attachment_image_url( $image_id, 'woocommerce_thumbnail' ) : false;
		return is_string( $url ) ? $url : '';
	}

	// ---- the cart token and the visitor id ------------------------------------------------------

	/**
	 * The cart's token, made and kept in the WooCommerce session on first use. It is the
	 * widget's cart token and the order's `_pushcart_cart_token`, which is how Pushcart ties
	 * the order to the checkout it recovers.
	 *
	 * @return string '' without a session.
	 */
	public function token() {
		$token   = $this->peek_token();
		$session = self::session();
		if ( '' === $token && $session ) {
			$token = bin2hex( random_bytes( 16 ) );
			$session->set( self::TOKEN_KEY, $token );
		}
		return $token;
	}

	/**
	 * The cart's token if it has one, without making one.
	 *
	 * @return string
	 */
	public function peek_token() {
		$session = self::session();
		$token   = $session ? $session->get( self::TOKEN_KEY ) : '';
		return is_string( $token ) && preg_match( '/^[a-f0-9]{32}$/', $token ) ? $token : '';
	}

	/**
	 * A visitor id as the widget makes them, or '' for anything else.
	 *
	 * @param mixed $value The cookie's value.
	 * @return string
	 */
	public static function sanitize_visitor_id( $value ) {
		$value = is_string( $value ) ? trim( $value ) : '';
		return preg_match( self::VISITOR_PATTERN, $value ) ? $value : '';
	}

	/**
	 * Queues checkout_started once per request, for a cart with something in it.
	 */
	private function queue_checkout() {
		$wc = function_exists( 'WC' ) ? WC() : null;
		if ( $this->checkout_queued || ! $wc || empty( $wc->cart ) || $wc->cart->is_empty() ) {
			return;
		}
		$this->checkout_queued = true;
		$this->queue( 'checkout_started' );
	}

	/**
	 * WooCommerce's session for this visitor, or null (admin pages, cron, no WooCommerce).
	 *
	 * @return object|null
	 */
	private static function session() {
		$wc = function_exists( 'WC' ) ? WC() : null;
		return ( $wc && ! empty( $wc->session ) ) ? $wc->session : null;
	}
}
