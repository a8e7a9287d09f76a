<?php
/**
 * The settings page (WooCommerce → Pushcart, or Settings → Pushcart without WooCommerce) and
 * its "create the webhooks" button.
 *
 * @package PushcartForWooCommerce
 */

defined( 'ABSPATH' ) || exit;

/**
 * Admin screens. Every value printed is escaped; the stored secret is never printed.
 */
final class Pushcart_WC_Admin {

	const WEBHOOK_ACTION = 'pushcart_wc_webhooks';

	/** @var Pushcart_WC_Webhooks */
	private $webhooks;

	/**
	 * @param Pushcart_WC_Webhooks $webhooks The webhooks the button makes.
	 */
	public function __construct( Pushcart_WC_Webhooks $webhooks ) {
		$this->webhooks = $webhooks;
	}

	/**
	 * Registers the admin hooks.
	 */
	public function hook() {
		add_action( 'admin_menu', array( $this, 'menu' ), 60 );
		add_action( 'admin_init', array( $this, 'fields' ) );
		add_action( 'admin_post_' . self::WEBHOOK_ACTION, array( $this, 'handle_webhooks' ) );
		add_action( 'admin_notices', array( $this, 'notices' ) );
		add_filter( 'plugin_action_links_' . plugin_basename( PUSHCART_WC_FILE ), array( $this, 'action_links' ) );
	}

	/**
	 * The page's admin URL.
	 *
	 * @return string
	 */
	public static function page_url() {
		$parent = class_exists( 'WooCommerce' ) ? 'admin.php' : 'options-general.php';
		return add_query_arg( 'page', Pushcart_WC_Settings::PAGE, admin_url( $parent ) );
	}

	/**
	 * `admin_menu`: under WooCommerce when it is active, else under Settings.
	 */
	public function menu() {
		$title = __( 'Pushcart', 'pushcart-for-woocommerce' );
		if ( class_exists( 'WooCommerce' ) ) {
			add_submenu_page( 'woocommerce', $title, $title, Pushcart_WC_Settings::capability(), Pushcart_WC_Settings::PAGE, array( $this, 'render' ) );
		} else {
			add_options_page( $title, $title, Pushcart_WC_Settings::capability(), Pushcart_WC_Settings::PAGE, array( $this, 'render' ) );
		}
	}

	/**
	 * `admin_init`: the section and its three fields.
	 */
	public function fields() {
		add_settings_section( 'pushcart_wc_main', __( 'Connection', 'pushcart-for-woocommerce' ), array( $this, 'section_intro' ), Pushcart_WC_Settings::PAGE );
		add_settings_field( 'pushcart_wc_connect', __( 'Connect value', 'pushcart-for-woocommerce' ), array( $this, 'field_connect' ), Pushcart_WC_Settings::PAGE, 'pushcart_wc_main', array( 'label_for' => 'pushcart_wc_connect' ) );
		add_settings_field( 'pushcart_wc_url', __( 'Pushcart URL', 'pushcart-for-woocommerce' ), array( $this, 'field_url' ), Pushcart_WC_Settings::PAGE, 'pushcart_wc_main', array( 'label_for' => 'pushcart_wc_url' ) );
		add_settings_field( 'pushcart_wc_public_key', __( 'Shop public key', 'pushcart-for-woocommerce' ), array( $this, 'field_public_key' ), Pushcart_WC_Settings::PAGE, 'pushcart_wc_main', array( 'label_for' => 'pushcart_wc_public_key' ) );
		add_settings_field( 'pushcart_wc_secret', __( 'Webhook secret', 'pushcart-for-woocommerce' ), array( $this, 'field_secret' ), Pushcart_WC_Settings::PAGE, 'pushcart_wc_main', array( 'label_for' => 'pushcart_wc_secret' ) );
		add_settings_section( 'pushcart_wc_home_screen', __( 'iPhone and iPad', 'pushcart-for-woocommerce' ), array( $this, 'section_home_screen' ), Pushcart_WC_Settings::PAGE );
		add_settings_field( 'pushcart_wc_manifest', __( 'Web app manifest', 'pushcart-for-woocommerce' ), array( $this, 'field_manifest' ), Pushcart_WC_Settings::PAGE, 'pushcart_wc_home_screen', array( 'label_for' => 'pushcart_wc_manifest' ) );
		add_settings_field( 'pushcart_wc_theme_color', __( 'Theme colour', 'pushcart-for-woocommerce' ), array( $this, 'field_theme_color' ), Pushcart_WC_Settings::PAGE, 'pushcart_wc_home_screen', array( 'label_for' => 'pushcart_wc_theme_color' ) );
	}

	/**
	 * The iPhone and iPad section's lead text.
	 */
	public function section_home_screen() {
		echo '<p>' . esc_html__( 'iPhones and iPads show notifications only from a shop added to the Home Screen, and Safari adds one as an app only when its pages link a web app manifest. The plugin links one on pages that link none; the Home Screen icon is the Site Icon (Settings → General).', 'pushcart-for-woocommerce' ) . '</p>';
	}

	/**
	 * The manifest's switch, and where the manifest is served.
	 */
	public function field_manifest() {
		printf(
			'<input type="hidden" name="%1$s[form]" value="1" /><label><input type="checkbox" id="pushcart_wc_manifest" name="%1$s[enabled]" value="1"%2$s /> %3$s</label><p class="description">%4$s <code>%5$s</code></p>',
			esc_attr( Pushcart_WC_Manifest::OPTION ),
			checked( Pushcart_WC_Manifest::get( 'enabled' ), true, false ),
			esc_html__( 'Serve a manifest and link it on pages that link none', 'pushcart-for-woocommerce' ),
			esc_html__( 'Turn off when your theme or another plugin links its own manifest. Served at', 'pushcart-for-woocommerce' ),
			esc_html( Pushcart_WC_Manifest::url() )
		);
	}

	/**
	 * The manifest's theme colour.
	 */
	public function field_theme_color() {
		printf(
			'<input type="color" id="pushcart_wc_theme_color" name="%1$s[theme_color]" value="%2$s" /><p class="description">%3$s</p>',
			esc_attr( Pushcart_WC_Manifest::OPTION ),
			esc_attr( Pushcart_WC_Manifest::get( 'theme_color' ) ),
			esc_html__( 'The colour of the Home Screen app\'s title bar.', 'pushcart-for-woocommerce' )
		);
	}

	/**
	 * The section's lead text.
	 */
	public function section_intro() {
		echo '<p>' . esc_html__( 'Where your Pushcart service runs and which shop this is. The script tag and the service worker are added once the URL and the key are set.', 'pushcart-for-woocommerce' ) . '</p>';
	}

	/**
	 * The connect value field: one value from Pushcart's Install page sets the three below.
	 */
	public function field_connect() {
		printf(
			'<input type="text" class="large-text code" id="pushcart_wc_connect" name="%1$s[connect]" value="" placeholder="https://push.example.com/connect/…" autocomplete="off" spellcheck="false" /><p class="description">%2$s</p>',
			esc_attr( Pushcart_WC_Settings::OPTION ),
			esc_html__( 'The quick way: on Pushcart\'s dashboard, Install → "Make a connect value", paste it here and save. The plugin then fills in the three fields below (it works once, within an hour). Or fill them in yourself.', 'pushcart-for-woocommerce' )
		);
	}

	/**
	 * The URL field.
	 */
	public function field_url() {
		printf(
			'<input type="url" class="regular-text code" id="pushcart_wc_url" name="%1$s[url]" value="%2$s" placeholder="https://push.example.com" autocomplete="off" /><p class="description">%3$s</p>',
			esc_attr( Pushcart_WC_Settings::OPTION ),
			esc_attr( Pushcart_WC_Settings::get( 'url' ) ),
			esc_html__( 'The PUBLIC_URL of your Pushcart service, https:// (http:// only for localhost).', 'pushcart-for-woocommerce' )
		);
	}

	/**
	 * The public key field.
	 */
	public function field_public_key() {
		printf(
			'<input type="text" class="regular-text code" id="pushcart_wc_public_key" name="%1$s[public_key]" value="%2$s" pattern="[A-Za-z0-9_\-]{1,64}" maxlength="64" autocomplete="off" spellcheck="false" /><p class="description">%3$s</p>',
			esc_attr( Pushcart_WC_Settings::OPTION ),
			esc_attr( Pushcart_WC_Settings::get( 'public_key' ) ),
			esc_html__( 'The "public_key" that Pushcart\'s "shop create" command printed for this shop.', 'pushcart-for-woocommerce' )
		);
	}

	/**
	 * The secret field: always empty; it says whether a secret is stored and shows at most its
	 * last four characters.
	 */
	public function field_secret() {
		$hint = Pushcart_WC_Settings::secret_hint();
		printf(
			'<input type="password" class="regular-text code" id="pushcart_wc_secret" name="%1$s[secret]" value="" autocomplete="new-password" spellcheck="false" placeholder="%2$s" />',
			esc_attr( Pushcart_WC_Settings::OPTION ),
			esc_attr( '' === $hint ? __( 'not set', 'pushcart-for-woocommerce' ) : __( 'stored — leave empty to keep it', 'pushcart-for-woocommerce' ) )
		);
		if ( '' !== $hint ) {
			printf(
				'<p class="description">%1$s <code>%2$s</code></p><p><label><input type="checkbox" name="%3$s[secret_clear]" value="1" /> %4$s</label></p>',
				esc_html__( 'A secret is stored, ending in', 'pushcart-for-woocommerce' ),
				esc_html( $hint ),
				esc_attr( Pushcart_WC_Settings::OPTION ),
				esc_html__( 'Remove the stored secret', 'pushcart-for-woocommerce' )
			);
		}
		echo '<p class="description">' . esc_html__( 'The shop\'s webhook secret from Pushcart (it starts with whsec_): on Pushcart\'s dashboard under Install → Connection, or printed by its shop secret command. WooCommerce signs each webhook delivery with it, and Pushcart checks them with it; it is never shown again here.', 'pushcart-for-woocommerce' ) . '</p>';
	}

	/**
	 * The page: the settings form, then the webhooks' state and their button.
	 */
	public function render() {
		if ( ! current_user_can( Pushcart_WC_Settings::capability() ) ) {
			wp_die( esc_html__( 'You are not allowed to change the Pushcart settings.', 'pushcart-for-woocommerce' ), 403 );
		}
		echo '<div class="wrap"><h1>' . esc_html__( 'Pushcart', 'pushcart-for-woocommerce' ) . '</h1>';
		settings_errors( Pushcart_WC_Settings::OPTION );
		echo '<form method="post" action="' . esc_url( admin_url( 'options.php' ) ) . '">';
		settings_fields( Pushcart_WC_Settings::GROUP );
		do_settings_sections( Pushcart_WC_Settings::PAGE );
		submit_button();
		echo '</form>';
		$this->render_checks();
		$this->render_webhooks();
		echo '</div>';
	}

	/**
	 * The webhooks' table and the button that makes (or repairs) them.
	 */
	private function render_webhooks() {
		echo '<h2>' . esc_html__( 'WooCommerce webhooks', 'pushcart-for-woocommerce' ) . '</h2>';
		echo '<p>' . esc_html__( 'Orders and product changes reach Pushcart through WooCommerce\'s own webhooks, signed with the secret above. Orders carry the Pushcart visitor id and cart token in their meta data.', 'pushcart-for-woocommerce' ) . '</p>';
		$url = Pushcart_WC_Webhooks::delivery_url();
		if ( '' !== $url ) {
			echo '<p>' . esc_html__( 'Delivery URL:', 'pushcart-for-woocommerce' ) . ' <code>' . esc_html( $url ) . '</code></p>';
		}
		echo '<table class="widefat striped" style="max-width:60em"><thead><tr><th>' . esc_html__( 'Topic', 'pushcart-for-woocommerce' ) . '</th><th>' . esc_html__( 'Status', 'pushcart-for-woocommerce' ) . '</th><th>' . esc_html__( 'Failed deliveries in a row', 'pushcart-for-woocommerce' ) . '</th><th>' . esc_html__( 'Delivery URL', 'pushcart-for-woocommerce' ) . '</th></tr></thead><tbody>';
		foreach ( $this->webhooks->statuses() as $row ) {
			if ( ! $row['exists'] ) {
				$status = __( 'not created', 'pushcart-for-woocommerce' );
			} elseif ( ! $row['matches'] ) {
				/* translators: %s: the webhook's status */
				$status = sprintf( __( '%s (points elsewhere: press the button to update it)', 'pushcart-for-woocommerce' ), $row['status'] );
			} else {
				$status = $row['status'];
			}
			printf(
				'<tr><td><code>%1$s</code></td><td>%2$s</td><td>%3$s</td><td><code>%4$s</code></td></tr>',
				esc_html( $row['topic'] ),
				esc_html( $status ),
				esc_html( (string) $row['failures'] ),
				esc_html( $row['delivery_url'] )
			);
		}
		echo '</tbody></table>';

		$blocker = self::webhook_blocker();
		echo '<form method="post" action="' . esc_url( admin_url( 'admin-post.php' ) ) . '">';
		echo '<input type="hidden" name="action" value="' . esc_attr( self::WEBHOOK_ACTION ) . '" />';
		wp_nonce_field( self::WEBHOOK_ACTION );
		submit_button( __( 'Create or update the webhooks', 'pushcart-for-woocommerce' ), 'secondary', 'submit', true, '' === $blocker ? array() : array( 'disabled' => 'disabled' ) );
		if ( '' !== $blocker ) {
			echo '<p class="description" id="pushcart-wc-webhook-blocker">' . esc_html( $blocker ) . '</p>';
		}
		echo '</form>';
	}

	/**
	 * What keeps the webhook button from working, first things first.
	 *
	 * @return string '' when nothing does.
	 */
	public static function webhook_blocker() {
		if ( ! class_exists( 'WC_Webhook' ) ) {
			return __( 'WooCommerce is not active: install and activate WooCommerce (Plugins → Add New), then come back to make the webhooks.', 'pushcart-for-woocommerce' );
		}
		if ( '' === Pushcart_WC_Webhooks::delivery_url() ) {
			return __( 'Save a connect value (or the Pushcart URL and the shop public key) first.', 'pushcart-for-woocommerce' );
		}
		if ( '' === Pushcart_WC_Settings::get( 'secret' ) ) {
			return __( 'Save the webhook secret first: WooCommerce signs every delivery with it.', 'pushcart-for-woocommerce' );
		}
		return '';
	}

	/**
	 * The checks: whether this site serves the worker file so that a browser can register it.
	 */
	private function render_checks() {
		echo '<h2>' . esc_html__( 'Checks', 'pushcart-for-woocommerce' ) . '</h2>';
		if ( ! Pushcart_WC_Settings::is_configured() ) {
			echo '<p>' . esc_html__( 'The checks run once the Pushcart URL and the shop public key are saved.', 'pushcart-for-woocommerce' ) . '</p>';
			return;
		}
		$worker = Pushcart_WC_Frontend::check_worker();
		printf(
			'<div class="notice inline notice-%1$s"><p id="pushcart-wc-check-worker" class="pushcart-wc-check-%2$s"><strong>%3$s</strong> %4$s</p></div>',
			esc_attr( $worker['ok'] ? 'success' : 'error' ),
			esc_attr( $worker['ok'] ? 'ok' : 'failed' ),
			esc_html( $worker['ok'] ? __( 'Worker file: OK.', 'pushcart-for-woocommerce' ) : __( 'Worker file: not reachable.', 'pushcart-for-woocommerce' ) ),
			esc_html( $worker['message'] )
		);
		echo '<p class="description">' . esc_html__( 'Pushcart\'s dashboard (Install → Connection) checks the other side: that this site\'s origin is allowed and that webhook deliveries arrive.', 'pushcart-for-woocommerce' ) . '</p>';
	}

	/**
	 * `admin_post_pushcart_wc_webhooks`: capability, nonce, then sync and back to the page.
	 */
	public function handle_webhooks() {
		if ( ! current_user_can( Pushcart_WC_Settings::capability() ) ) {
			wp_die( esc_html__( 'You are not allowed to change the Pushcart settings.', 'pushcart-for-woocommerce' ), 403 );
		}
		check_admin_referer( self::WEBHOOK_ACTION );
		$result = $this->webhooks->sync( get_current_user_id() );
		wp_safe_redirect( add_query_arg( 'pushcart_webhooks', rawurlencode( $result ), self::page_url() ) );
		exit;
	}

	/**
	 * `admin_notices`: the button's outcome on the plugin's page, and a missing WooCommerce.
	 */
	public function notices() {
		if ( ! class_exists( 'WooCommerce' ) && current_user_can( 'activate_plugins' ) ) {
			echo '<div class="notice notice-warning" id="pushcart-wc-no-woocommerce"><p>' . esc_html__( 'Pushcart for WooCommerce: WooCommerce is not active. The widget and the service worker are added, but no cart events, order links or webhooks are made until WooCommerce is installed and activated.', 'pushcart-for-woocommerce' ) . '</p></div>';
		}
		// phpcs:disable WordPress.Security.NonceVerification.Recommended -- a message selector after our own redirect; it changes nothing.
		$page   = isset( $_GET['page'] ) ? sanitize_key( wp_unslash( $_GET['page'] ) ) : '';
		$result = ( Pushcart_WC_Settings::PAGE === $page && isset( $_GET['pushcart_webhooks'] ) ) ? sanitize_key( wp_unslash( $_GET['pushcart_webhooks'] ) ) : '';
		// phpcs:enable
		$messages = array(
			'created'        => array( 'success', __( 'The Pushcart webhooks are set up.', 'pushcart-for-woocommerce' ) ),
			'not_configured' => array( 'error', __( 'Set the Pushcart URL, the shop public key and the webhook secret first.', 'pushcart-for-woocommerce' ) ),
			'no_woocommerce' => array( 'error', __( 'WooCommerce is not active.', 'pushcart-for-woocommerce' ) ),
		);
		if ( isset( $messages[ $result ] ) ) {
			printf( '<div class="notice notice-%1$s is-dismissible"><p>%2$s</p></div>', esc_attr( $messages[ $result ][0] ), esc_html( $messages[ $result ][1] ) );
		}
	}

	/**
	 * `plugin_action_links_…`: a Settings link on the Plugins screen.
	 *
	 * @param string[] $links The row's links.
	 * @return string[]
	 */
	public function action_links( $links ) {
		array_unshift( $links, '<a href="' . esc_url( self::page_url() ) . '">' . esc_html__( 'Settings', 'pushcart-for-woocommerce' ) . '</a>' );
		return $links;
	}
}
