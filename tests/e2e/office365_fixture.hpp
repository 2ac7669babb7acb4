// End-to-end support for the Office 365 flows: a graph-emulator child
// seeded with one tenant ("contoso.com") and the CRM's app registration, a
// crmsyncd child wired to it, and a "browser" that follows the sign-in,
// consent and invitation redirects by hand.
//
// The browser always sends a redirect that points at the node to the node
// that runs now, whatever origin the URL names: a node restarted on the same
// data directory listens on another port, and tests that restart pin the
// origin the node puts in redirects and links with `public_url`.
// One office365_env belongs to one test thread.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/office365.hpp"
#include "tests/support/api_client.hpp"
#include "tests/support/emulator.hpp"
#include "tests/support/temp_dir.hpp"

namespace crmsync::e2e {

/// One Office 365 user to seed.
struct o365_user_seed {
  std::string upn;
  std::string name;
  bool admin = false;
  bool mailbox = true; ///< false: no "mail" and no mailbox
};

/// contoso.com's people: admin (Global Administrator), bob, carol (no
/// mailbox), plus `extra` more users user01..userNN.
std::vector<o365_user_seed> contoso_users(int extra = 0);

/// The "users" array of POST /_emulator/tenants for these people.
std::string users_json(const std::vector<o365_user_seed>& users);

/// One e-mail the emulator recorded for a sender.
struct sent_mail {
  std::string to;
  std::string subject;
  std::string html;
};

/// An absolute URL split up: origin "http://host:port" and target
/// "/path?query".
struct url_parts {
  std::string origin;
  std::string target;
};

/// Splits an absolute http(s) URL; throws std::runtime_error otherwise.
url_parts split_url(std::string_view url);

/// The decoded value of a query parameter of `url` ("" when absent).
std::string query_param(std::string_view url, std::string_view name);

/// The first "{origin}/invite/{token}" link in an e-mail's HTML: the token.
std::string invite_token_in(const sent_mail& m, std::string_view origin);

/// The first link (href) of an e-mail's HTML that starts with `prefix`
/// ("" when none).
std::string link_in(const std::string& html, const std::string& prefix);

/// The result of one whole sign-in through the browser.
struct signin_result {
  api_response answer;      ///< the node's final answer
  std::string session;      ///< office365_session, when not_a_member
  std::string token;        ///< user token, when member/installed
  std::string callback_url; ///< the URL the emulator sent the browser to
};

/// An organization made by installing the app.
struct installed_org {
  std::string id;
  std::string admin_id;
  std::string token; ///< the admin's
};

/// How many e-mails went to each address.
std::map<std::string, int> by_recipient(const std::vector<sent_mail>& mail);

std::string invites_path(std::string_view org);

/// What a browser sends as Accept: text/html first (the pages answer it).
constexpr const char* browser_accept
    = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8";

/// The CSRF token of a page's (first) form.
std::string csrf_in(const std::string& html);

/// The browser at the identity platform: GET `url` (which must point at the
/// emulator behind `emulator`, origin `emulator_url`) with login_hint=upn;
/// expects a 302 and returns its Location.
std::string sign_in_at_emulator(api_client& emulator,
                                const std::string& emulator_url,
                                const std::string& url, std::string_view upn);

/// An app-only access token (client credentials) for `tenant` from the
/// emulator's token endpoint.
std::string app_token(api_client& emulator, std::string_view tenant,
                      std::string_view client_id, std::string_view secret);

/// An app playing "a person in Outlook": Graph calls under /v1.0 with its
/// app-only token (fetched again once when refused; 429 and 503 retried).
class graph_app {
public:
  graph_app(uint16_t emulator_port, std::string tenant, std::string client_id,
            std::string secret,
            std::chrono::milliseconds timeout = std::chrono::seconds(30));
  api_response call(std::string_view method, std::string_view path,
                    std::string_view body = {},
                    const http::header_list& headers = {});

private:
  api_client client_;
  std::string tenant_, id_, secret_, token_;
};

/// The Office 365 side every end-to-end fixture starts from: a
/// graph-emulator child seeded with contoso.com (contoso_users()) and the
/// CRM's app registration, which no tenant has consented to yet. The nodes
/// under test get node_args(). office365_env and the cluster's fixture
/// both stand on it. One belongs to one test thread.
class office365_tenant {
public:
  struct options {
    std::string log_file; ///< the emulator's stderr; required
    int extra_users = 0;  ///< users of contoso.com beyond admin, bob, carol
    std::vector<std::string> emulator_args;
  };

  explicit office365_tenant(options opts);
  ~office365_tenant();
  office365_tenant(const office365_tenant&) = delete;
  office365_tenant& operator=(const office365_tenant&) = delete;

  /// The emulator's client, base URL and port.
  api_client& emulator() {
    return *emulator_api_;
  }
  std::string url() const {
    return emulator_.origin();
  }
  uint16_t port() const {
    return emulator_.port();
  }
  /// Stops the emulator (the destructor does it too).
  void stop();

  /// contoso.com's tenant id and its users' Office 365 ids by UPN.
  const std::string& tenant() const {
    return tenant_;
  }
  std::string o365_id(std::string_view upn) const;
  /// Seeds another tenant; returns its id and fills `ids` by UPN.
  std::string seed_tenant(std::string_view domain,
                          const std::vector<o365_user_seed>& users,
                          std::map<std::string, std::string>& ids);
  /// Registers another app with the emulator, consented by `tenants`
  /// (domains); REQUIREs 201.
  void register_app(std::string_view client_id, std::string_view secret,
                    const std::vector<std::string>& tenants);
  /// POST /_emulator/faults; REQUIREs 200.
  void set_faults(std::string_view json);

  /// What wires a node to this emulator as the CRM's app: --graph-base-url,
  /// --login-base-url, --client-id and --client-secret.
  std::vector<std::string> node_args() const;

private:
  test::emulator emulator_;
  std::unique_ptr<api_client> emulator_api_;
  std::string tenant_;
  std::map<std::string, std::string> ids_;
};

/// One event of an Office 365 calendar as Graph lists it; start and end
/// as RFC 3339 UTC ("2026-12-01T10:00:00Z").
struct graph_event {
  std::string id;
  std::string subject;
  std::string start;
  std::string end;
};

/// Every page of a Graph list under /v1.0: `get(path)` answers one page
/// (it must be 200), `page` reads it; nextLinks are followed (at most 100
/// pages, then the test fails).
void each_graph_page(const std::function<api_response(const std::string&)>& get,
                     std::string path,
                     const std::function<void(const api_response&)>& page);

/// Every event of calendar `calendar` in `mailbox`, read through `app`
/// page by page; REQUIREs each page and UTC times.
std::vector<graph_event> calendar_events(graph_app& app,
                                         std::string_view mailbox,
                                         std::string_view calendar);

class office365_env {
public:
  struct options {
    /// Users of contoso.com beyond admin, bob and carol.
    int extra_users = 0;
    /// The origin the node puts in redirects and e-mail links ("" = its
    /// own listener).
    std::string public_url;
    std::vector<std::string> node_args;
    std::vector<std::string> emulator_args;
  };

  office365_env();
  explicit office365_env(options opts);
  ~office365_env();

  /// The node's client (replaced on restart) and the node itself.
  api_client& node() {
    return node_->api();
  }
  test_node& node_process() {
    return *node_;
  }
  /// "http://127.0.0.1:PORT" of the node that runs now.
  std::string node_url() const;
  /// The origin the node uses in redirects and links.
  std::string public_url() const;
  /// SIGTERM (which must exit 0) and start again on the same data dir.
  void restart_node();
  /// The two halves of restart_node(), for a look at what the stopped node
  /// left behind in between.
  void stop_node();
  void start_node();
  /// The e-mail the node left queued in its outbox; only while it is
  /// stopped.
  std::vector<mail_item> outbox_of_stopped_node();

  /// The emulator's client and base URL.
  api_client& emulator() {
    return o365_.emulator();
  }
  std::string emulator_url() const {
    return o365_.url();
  }
  /// POST /_emulator/faults; throws unless 200.
  void set_faults(std::string_view json);

  /// contoso.com's tenant id and its users' Office 365 ids by UPN.
  const std::string& tenant() const {
    return o365_.tenant();
  }
  std::string o365_id(std::string_view upn) const;
  /// Seeds another tenant; returns its id and fills `ids` by UPN.
  std::string seed_tenant(std::string_view domain,
                          const std::vector<o365_user_seed>& users,
                          std::map<std::string, std::string>& ids);

  // -- the browser -----------------------------------------------------------

  /// GET on the node; expects a 302 and returns its Location.
  std::string begin(std::string_view path);
  /// GET `url` (at the emulator) with login_hint=upn; expects a 302 and
  /// returns its Location.
  std::string at_emulator(const std::string& url, std::string_view upn);
  /// GET the target of `url` on the node that runs now.
  api_response open(const std::string& url);
  /// begin(path), sign in as `upn` at the emulator, open the callback.
  signin_result sign_in(std::string_view path, std::string_view upn);
  /// The whole install as `upn` (consent given by `upn` too when the
  /// tenant has not consented); REQUIREs 200 "installed".
  signin_result install(std::string_view upn);
  /// sign_in("/o365/signin") as `upn`; REQUIREs 200 "not_a_member" and
  /// returns the session.
  std::string session_of(std::string_view upn);

  /// install("admin@contoso.com"), then the paid edition (billing).
  installed_org install_paid();

  // -- mail ------------------------------------------------------------------

  /// Mail `upn` has sent so far.
  std::vector<sent_mail> mail_sent_by(std::string_view upn);
  /// Polls until `upn` has sent at least `count` e-mails; returns what was
  /// sent by then. Fails the test when `timeout` passes first.
  std::vector<sent_mail> wait_for_mail(std::string_view upn, size_t count,
                                       std::chrono::milliseconds timeout
                                       = std::chrono::seconds(20));

  // -- CRM side --------------------------------------------------------------

  /// The audit log of `org`, actions newest first.
  std::vector<std::string> audit_actions(std::string_view org,
                                         std::string_view token);
  /// Polls the audit log until it holds `count` entries of `action`;
  /// returns the actions by then. Fails the test when `timeout` passes
  /// first.
  std::vector<std::string> wait_for_audit(const installed_org& org,
                                          std::string_view action, size_t count,
                                          std::chrono::milliseconds timeout
                                          = std::chrono::seconds(20));
  /// POST /api/v1/orgs/{org}/invites for these Office 365 user ids.
  api_response invite(std::string_view token, std::string_view org,
                      const std::vector<std::string>& o365_ids);

private:
  test::temp_dir dir_;
  office365_tenant o365_;
  std::string public_url_;
  std::unique_ptr<test_node> node_;
};

/// REQUIREs `expected` as the status (showing the answer when it differs)
/// and passes the answer on. Unlike E2E_REQUIRE_STATUS it evaluates a
/// request expression once.
api_response expect_status(api_response r, int expected);

/// How many times `value` occurs in `items`.
size_t count_of(const std::vector<std::string>& items, std::string_view value);

} // namespace crmsync::e2e
