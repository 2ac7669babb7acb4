#include "tests/e2e/office365_fixture.hpp"

#include <catch2/catch.hpp>

#include <cstdio>
#include <stdexcept>
#include <thread>

#include "http/url.hpp"
#include "storage/codec.hpp"
#include "storage/db.hpp"
#include "tests/support/eventually.hpp"

namespace crmsync::e2e {

namespace {

constexpr const char* client_id = "crm";
constexpr const char* client_secret = "s3cret";

} // namespace

std::string users_json(const std::vector<o365_user_seed>& users) {
  std::string out = "[";
  for (auto& u : users) {
    if (out.size() > 1)
      out += ',';
    out += "{\"userPrincipalName\":" + json_str(u.upn)
           + ",\"displayName\":" + json_str(u.name);
    if (u.mailbox)
      out += ",\"mail\":" + json_str(u.upn);
    else
      out += ",\"hasMailbox\":false";
    if (u.admin)
      out += ",\"isAdmin\":true";
    out += '}';
  }
  return out + "]";
}

std::vector<o365_user_seed> contoso_users(int extra) {
  std::vector<o365_user_seed> users{
      {"admin@contoso.com", "Ada Admin", true, true},
      {"bob@contoso.com", "Bob", false, true},
      {"carol@contoso.com", "Carol", false, false},
  };
  for (int i = 1; i <= extra; ++i) {
    char name[16];
    std::snprintf(name, sizeof(name), "user%02d", i);
    users.push_back({std::string{name} + "@contoso.com",
                     "User " + std::to_string(i), false, true});
  }
  return users;
}

url_parts split_url(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0)
    throw std::runtime_error("not an absolute URL: '" + std::string{url} + "'");
  auto path = url.find('/', scheme_end + 3);
  if (path == std::string_view::npos)
    return {std::string{url}, "/"};
  return {std::string{url.substr(0, path)}, std::string{url.substr(path)}};
}

std::string query_param(std::string_view url, std::string_view name) {
  auto q = url.find('?');
  if (q == std::string_view::npos)
    return {};
  http::query_params ps;
  if (!http::parse_query(url.substr(q + 1), ps))
    throw std::runtime_error("bad query in '" + std::string{url} + "'");
  auto v = http::find_param(ps, name);
  return v == nullptr ? std::string{} : *v;
}

std::string invite_token_in(const sent_mail& m, std::string_view origin) {
  auto prefix = std::string{origin} + "/invite/";
  auto at = m.html.find(prefix);
  if (at == std::string::npos)
    return {};
  auto begin = at + prefix.size();
  auto end = m.html.find_first_of("\"<& ", begin);
  return m.html.substr(begin, end == std::string::npos ? std::string::npos
                                                       : end - begin);
}

std::string link_in(const std::string& html, const std::string& prefix) {
  auto at = html.find("href=\"" + prefix);
  if (at == std::string::npos)
    return {};
  at += 6;
  return html.substr(at, html.find('"', at) - at);
}

std::map<std::string, int> by_recipient(const std::vector<sent_mail>& mail) {
  std::map<std::string, int> out;
  for (auto& m : mail)
    ++out[m.to];
  return out;
}

std::string invites_path(std::string_view org) {
  return "/api/v1/orgs/" + std::string{org} + "/invites";
}

api_response expect_status(api_response r, int expected) {
  E2E_REQUIRE_STATUS(r, expected);
  return r;
}

size_t count_of(const std::vector<std::string>& items, std::string_view value) {
  size_t n = 0;
  for (auto& x : items)
    n += x == value ? 1 : 0;
  return n;
}

// -- office365_env
// ----------------------------------------------------------------------

office365_env::office365_env() : office365_env(options{}) {}

office365_env::office365_env(options opts)
    : o365_(
        {dir_.path() + "/emulator.log", opts.extra_users, opts.emulator_args})
    , public_url_(opts.public_url) {
  auto args = o365_.node_args();
  if (!public_url_.empty()) {
    args.emplace_back("--public-url");
    args.push_back(public_url_);
  }
  args.insert(args.end(), opts.node_args.begin(), opts.node_args.end());
  node_ = std::make_unique<test_node>(std::move(args));
}

office365_env::~office365_env() {
  // The node first: its mailer may still be talking to the emulator.
  node_.reset();
  o365_.stop();
}

std::string office365_env::node_url() const {
  return "http://127.0.0.1:" + std::to_string(node_->port());
}

std::string office365_env::public_url() const {
  return public_url_.empty() ? node_url() : public_url_;
}

void office365_env::restart_node() {
  stop_node();
  start_node();
}

void office365_env::stop_node() {
  // The log after the stop: it shows where a stop that hangs got to.
  auto rc = node_->stop();
  INFO(node_->log_tail());
  REQUIRE(rc == 0);
}

void office365_env::start_node() {
  node_->start();
}

std::vector<mail_item> office365_env::outbox_of_stopped_node() {
  storage::db_options o;
  o.path = node_->data_dir() + "/rocksdb";
  auto opened = storage::db::open(o);
  REQUIRE(opened);
  std::vector<mail_item> out;
  size_t undecodable = 0;
  auto err = (*opened)->scan(storage::column::outbox, {}, {},
                             [&](std::string_view, std::string_view v) {
                               mail_item m;
                               if (storage::codec::decode(v, m))
                                 out.push_back(std::move(m));
                               else
                                 ++undecodable;
                               return true;
                             });
  REQUIRE_FALSE(err);
  REQUIRE(undecodable == 0);
  return out;
}

void office365_env::set_faults(std::string_view json) {
  o365_.set_faults(json);
}

std::string office365_env::o365_id(std::string_view upn) const {
  return o365_.o365_id(upn);
}

std::string
office365_env::seed_tenant(std::string_view domain,
                           const std::vector<o365_user_seed>& users,
                           std::map<std::string, std::string>& ids) {
  return o365_.seed_tenant(domain, users, ids);
}

std::string office365_env::begin(std::string_view path) {
  auto r = node().get("", path);
  E2E_REQUIRE_STATUS(r, 302);
  auto location = r.header("Location");
  REQUIRE_FALSE(location.empty());
  return location;
}

std::string csrf_in(const std::string& html) {
  const std::string field = "name=\"csrf\" value=\"";
  auto at = html.find(field);
  INFO(html);
  REQUIRE(at != std::string::npos);
  at += field.size();
  return html.substr(at, html.find('"', at) - at);
}

std::string sign_in_at_emulator(api_client& emulator,
                                const std::string& emulator_url,
                                const std::string& url, std::string_view upn) {
  auto parts = split_url(url);
  INFO("redirected to " << url);
  REQUIRE(parts.origin == emulator_url);
  auto r = emulator.get("", parts.target
                                + "&login_hint=" + http::percent_encode(upn));
  E2E_REQUIRE_STATUS(r, 302);
  auto location = r.header("Location");
  REQUIRE_FALSE(location.empty());
  return location;
}

std::string app_token(api_client& emulator, std::string_view tenant,
                      std::string_view client_id, std::string_view secret) {
  auto r = emulator.request(
      "POST", "/" + std::string{tenant} + "/oauth2/v2.0/token", "",
      "grant_type=client_credentials&client_id=" + std::string{client_id}
          + "&client_secret=" + std::string{secret}
          + "&scope=https%3A%2F%2Fgraph.microsoft.com%2F.default",
      "application/x-www-form-urlencoded");
  E2E_REQUIRE_STATUS(r, 200);
  return r.str("/access_token");
}

graph_app::graph_app(uint16_t emulator_port, std::string tenant,
                     std::string client_id, std::string secret,
                     std::chrono::milliseconds timeout)
    : client_(emulator_port, timeout)
    , tenant_(std::move(tenant))
    , id_(std::move(client_id))
    , secret_(std::move(secret)) {}

api_response graph_app::call(std::string_view method, std::string_view path,
                             std::string_view body,
                             const http::header_list& headers) {
  std::string target = "/v1.0" + std::string{path};
  for (int attempt = 0;; ++attempt) {
    if (token_.empty())
      token_ = app_token(client_, tenant_, id_, secret_);
    auto r = client_.request(method, target, token_, body,
                             body.empty() ? "" : "application/json", headers);
    if (r.status == 401 && attempt == 0) {
      token_.clear();
      continue;
    }
    if ((r.status == 429 || r.status == 503) && attempt < 20) {
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
      continue;
    }
    return r;
  }
}

std::string office365_env::at_emulator(const std::string& url,
                                       std::string_view upn) {
  return sign_in_at_emulator(emulator(), o365_.url(), url, upn);
}

api_response office365_env::open(const std::string& url) {
  auto parts = split_url(url);
  INFO("redirected to " << url);
  REQUIRE(parts.origin == public_url());
  return node().get("", parts.target);
}

signin_result office365_env::sign_in(std::string_view path,
                                     std::string_view upn) {
  signin_result out;
  out.callback_url = at_emulator(begin(path), upn);
  out.answer = open(out.callback_url);
  if (out.answer.status == 200) {
    if (out.answer.has("/office365_session"))
      out.session = out.answer.str("/office365_session");
    if (out.answer.has("/user/token"))
      out.token = out.answer.str("/user/token");
  }
  return out;
}

signin_result office365_env::install(std::string_view upn) {
  auto out = sign_in("/o365/install", upn);
  if (out.answer.status == 302) {
    // The tenant has not consented yet: admin consent first.
    out.callback_url = at_emulator(out.answer.header("Location"), upn);
    out.answer = open(out.callback_url);
    if (out.answer.status == 200 && out.answer.has("/user/token"))
      out.token = out.answer.str("/user/token");
  }
  E2E_REQUIRE_STATUS(out.answer, 200);
  REQUIRE(out.answer.str("/status") == "installed");
  REQUIRE(out.token.rfind("crm_", 0) == 0);
  return out;
}

installed_org office365_env::install_paid() {
  auto r = install("admin@contoso.com");
  installed_org out{r.answer.str("/organization/id"), r.answer.str("/user/id"),
                    r.token};
  auto paid
      = node().patch(admin_token, org_path(out.id), R"({"edition":"paid"})");
  E2E_REQUIRE_STATUS(paid, 200);
  return out;
}

std::string office365_env::session_of(std::string_view upn) {
  auto s = sign_in("/o365/signin", upn);
  E2E_REQUIRE_STATUS(s.answer, 200);
  REQUIRE(s.answer.str("/status") == "not_a_member");
  REQUIRE(s.session.rfind("o365_", 0) == 0);
  return s.session;
}

std::vector<sent_mail> office365_env::mail_sent_by(std::string_view upn) {
  auto r
      = emulator().get("", "/_emulator/mail?user=" + http::percent_encode(upn));
  E2E_REQUIRE_STATUS(r, 200);
  std::vector<sent_mail> out;
  for (size_t i = 0; i < r.size("/value"); ++i) {
    auto base = "/value/" + std::to_string(i) + "/message";
    sent_mail m;
    m.subject = r.str(base + "/subject");
    m.html = r.str(base + "/body/content");
    REQUIRE(r.size(base + "/toRecipients") == 1);
    m.to = r.str(base + "/toRecipients/0/emailAddress/address");
    out.push_back(std::move(m));
  }
  return out;
}

std::vector<sent_mail>
office365_env::wait_for_mail(std::string_view upn, size_t count,
                             std::chrono::milliseconds timeout) {
  std::vector<sent_mail> got;
  bool arrived = test::eventually(
      [&] {
        got = mail_sent_by(upn);
        return got.size() >= count;
      },
      timeout);
  INFO(upn << " sent " << got.size() << " e-mail(s), " << count << " awaited");
  REQUIRE(arrived);
  return got;
}

std::vector<std::string> office365_env::audit_actions(std::string_view org,
                                                      std::string_view token) {
  auto r = node().get(token, "/api/v1/orgs/" + std::string{org} + "/audit");
  E2E_REQUIRE_STATUS(r, 200);
  std::vector<std::string> out;
  for (size_t i = 0; i < r.size("/items"); ++i)
    out.push_back(r.str("/items/" + std::to_string(i) + "/action"));
  return out;
}

std::vector<std::string>
office365_env::wait_for_audit(const installed_org& org, std::string_view action,
                              size_t count, std::chrono::milliseconds timeout) {
  std::vector<std::string> actions;
  bool logged = test::eventually(
      [&] {
        actions = audit_actions(org.id, org.token);
        return count_of(actions, action) >= count;
      },
      timeout);
  INFO("the audit log holds " << count_of(actions, action) << " '" << action
                              << "', " << count << " awaited");
  REQUIRE(logged);
  return actions;
}

api_response office365_env::invite(std::string_view token, std::string_view org,
                                   const std::vector<std::string>& o365_ids) {
  std::string ids;
  for (auto& id : o365_ids)
    ids += (ids.empty() ? "" : ",") + json_str(id);
  return node().post(token, invites_path(org),
                     "{\"office365_user_ids\":[" + ids + "]}");
}

// -- office365_tenant
// ----------------------------------------------------------------------

office365_tenant::office365_tenant(options opts) {
  test::emulator_options eo;
  eo.mode = test::emulator_mode::child_process;
  eo.log_file = opts.log_file;
  eo.extra_args = opts.emulator_args;
  emulator_.start(eo);
  emulator_api_ = std::make_unique<api_client>(emulator_.port());
  tenant_ = seed_tenant("contoso.com", contoso_users(opts.extra_users), ids_);
  // The CRM's app; no tenant has consented yet.
  register_app(client_id, client_secret, {});
}

office365_tenant::~office365_tenant() {
  stop();
}

void office365_tenant::stop() {
  emulator_api_.reset();
  if (emulator_.running())
    emulator_.stop();
}

std::string office365_tenant::o365_id(std::string_view upn) const {
  auto i = ids_.find(std::string{upn});
  if (i == ids_.end())
    throw std::runtime_error("no seeded user '" + std::string{upn} + "'");
  return i->second;
}

std::string
office365_tenant::seed_tenant(std::string_view domain,
                              const std::vector<o365_user_seed>& users,
                              std::map<std::string, std::string>& ids) {
  auto r = emulator().post("", "/_emulator/tenants",
                           "{\"domain\":" + json_str(domain)
                               + ",\"users\":" + users_json(users) + "}");
  E2E_REQUIRE_STATUS(r, 201);
  for (size_t i = 0; i < r.size("/users"); ++i) {
    auto base = "/users/" + std::to_string(i);
    ids[r.str(base + "/userPrincipalName")] = r.str(base + "/id");
  }
  return r.str("/id");
}

void office365_tenant::register_app(std::string_view id,
                                    std::string_view secret,
                                    const std::vector<std::string>& tenants) {
  std::string consented;
  for (auto& t : tenants)
    consented += (consented.empty() ? "" : ",") + json_str(t);
  auto r = emulator().post("", "/_emulator/apps",
                           "{\"client_id\":" + json_str(id)
                               + ",\"client_secret\":" + json_str(secret)
                               + ",\"tenants\":[" + consented + "]}");
  E2E_REQUIRE_STATUS(r, 201);
}

void office365_tenant::set_faults(std::string_view json) {
  auto r = emulator().post("", "/_emulator/faults", json);
  E2E_REQUIRE_STATUS(r, 200);
}

std::vector<std::string> office365_tenant::node_args() const {
  return {
      "--graph-base-url", url() + "/v1.0", "--login-base-url", url(),
      "--client-id",      client_id,       "--client-secret",  client_secret};
}

std::vector<graph_event> calendar_events(graph_app& app,
                                         std::string_view mailbox,
                                         std::string_view calendar) {
  std::vector<graph_event> out;
  std::string path = "/users/" + std::string{mailbox} + "/calendars/"
                     + std::string{calendar} + "/events?$top=1000";
  auto utc = [](const api_response& r, const std::string& at) {
    INFO(r.json(at));
    REQUIRE(r.str(at + "/timeZone") == "UTC");
    return r.str(at + "/dateTime").substr(0, 19) + "Z";
  };
  each_graph_page(
      [&](const std::string& p) { return app.call("GET", p); }, path,
      [&](const api_response& r) {
        for (size_t i = 0; i < r.size("/value"); ++i) {
          auto base = "/value/" + std::to_string(i);
          out.push_back({r.str(base + "/id"), r.str(base + "/subject"),
                         utc(r, base + "/start"), utc(r, base + "/end")});
        }
      });
  return out;
}

void each_graph_page(const std::function<api_response(const std::string&)>& get,
                     std::string path,
                     const std::function<void(const api_response&)>& page) {
  for (int pages = 0; pages < 100; ++pages) {
    auto r = get(path);
    E2E_REQUIRE_STATUS(r, 200);
    page(r);
    if (!r.has("/@odata.nextLink"))
      return;
    auto next = split_url(r.str("/@odata.nextLink")).target;
    REQUIRE(next.rfind("/v1.0", 0) == 0);
    path = next.substr(5);
  }
  FAIL("more than 100 pages");
}

} // namespace crmsync::e2e
