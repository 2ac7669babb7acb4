#include "cluster/node.hpp"

#include <pthread.h>

#include <algorithm>
#include <atomic>
#include <random>
#include <set>
#include <unordered_map>

#include <caf/actor_system_config.hpp>
#include <caf/event_based_actor.hpp>
#include <caf/io/middleman.hpp>
#include <caf/openssl/manager.hpp>
#include <caf/openssl/publish.hpp>
#include <caf/openssl/remote_actor.hpp>
#include <caf/scoped_actor.hpp>
#include <simdjson.h>

#include "cluster/etcd.hpp"
#include "cluster/etcd_claims.hpp"
#include "cluster/etcd_membership.hpp"
#include "cluster/rebalance.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/request_id.hpp"
#include "common/work_pool.hpp"
#include "http/url.hpp"
#include "protocol/errors.hpp"
#include "protocol/json.hpp"
#include "protocol/type_ids.hpp"
#include "storage/keys.hpp"
#include "storage/org_rows.hpp"

namespace crmsync::cluster {

using namespace crmsync::atom;

void prepare_actor_system(caf::actor_system_config& cfg, const tls_files& tls) {
  cfg.load<caf::io::middleman>();
  register_replication_types(cfg); // t15-repl
  mark_actor_threads(cfg);         // t15-ack
  // With a certificate, key and CA set, every session CAF's OpenSSL module
  // makes requires a peer certificate that the CA signed, on both sides
  // (SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT); the endpoint is
  // only ever published and reached through that module.
  cfg.load<caf::openssl::manager>();
  cfg.openssl_certificate = tls.cert_file;
  cfg.openssl_key = tls.key_file;
  cfg.openssl_cafile = tls.ca_file;
  // Off by default in CAF 0.17: without them a half-open peer is noticed
  // only when TCP gives up.
  cfg.set("middleman.heartbeat-interval",
          caf::timespan{std::chrono::milliseconds(500)});
  cfg.set("middleman.connection-timeout",
          caf::timespan{std::chrono::seconds(3)});
}

namespace {

/// Names the node that served a request in its answer (X-Crmsync-Node), so
/// clients and benchmarks see where a request ran.
class served_by : public http::responder {
public:
  served_by(http::responder_ptr inner, std::string node)
      : inner_(std::move(inner)), node_(std::move(node)) {}
  void reply(http::response r) override {
    r.headers.emplace_back("X-Crmsync-Node", node_);
    inner_->reply(std::move(r));
  }

private:
  http::responder_ptr inner_;
  std::string node_;
};

http::response to_response(http_answer& a) {
  http::response res;
  res.status = a.status;
  res.body = std::move(a.body);
  for (auto& [k, v] : a.headers) {
    if (k == "content-type")
      res.content_type = std::move(v);
    else
      res.headers.emplace_back(std::move(k), std::move(v));
  }
  return res;
}

http::response unavailable(const std::string& message) {
  return http::error_response(api_error{503, "node_unavailable", message, ""});
}

/// Hands the one answer of a request to `take`; a responder dropped without
/// answering hands over a 503 instead, so whoever waits on it always hears.
class answer_to : public http::responder {
public:
  explicit answer_to(std::function<void(http::response)> take)
      : take_(std::move(take)) {}
  ~answer_to() override {
    if (!done_.exchange(true))
      take_(unavailable("the request was dropped without an answer"));
  }
  void reply(http::response r) override {
    if (!done_.exchange(true))
      take_(std::move(r));
  }

private:
  std::function<void(http::response)> take_;
  std::atomic<bool> done_{false};
};

/// A forwarded request's answer goes back through the endpoint actor that
/// holds its promise (a promise is delivered from its own actor only).
http::responder_ptr to_endpoint(caf::actor endpoint, uint64_t ticket) {
  return std::make_shared<answer_to>([endpoint, ticket](http::response r) {
    http_answer a;
    a.status = static_cast<uint16_t>(r.status);
    a.headers = std::move(r.headers);
    a.headers.emplace_back("content-type", std::move(r.content_type));
    a.body = std::move(r.body);
    // A streamed body crosses the cluster whole (an export asked of
    // another node than its organization's).
    if (r.stream) {
      auto step = http::stream_step::more;
      while (step == http::stream_step::more)
        step = r.stream(a.body);
      if (step == http::stream_step::failed) {
        a.status = 500;
        a.body = json::encode_error(api_error{
            500, "storage_failure", "the streamed answer failed", ""});
      }
    }
    caf::anon_send(endpoint, forward_atom_v, ticket, std::move(a));
  });
}

/// The segment after `prefix` up to the next '/', if the path starts so.
std::optional<std::string> segment_after(const std::string& path,
                                         std::string_view prefix) {
  if (path.compare(0, prefix.size(), prefix) != 0)
    return std::nullopt;
  auto end = path.find('/', prefix.size());
  auto seg = path.substr(prefix.size(), end == std::string::npos
                                            ? std::string::npos
                                            : end - prefix.size());
  if (seg.empty())
    return std::nullopt;
  return seg;
}

} // namespace

// -- impl
// -----------------------------------------------------------------------

struct peer_state {
  member m;
  caf::actor handle; // the peer's endpoint while connected
  /// The peer's system while this node's hello to it is under way: its
  /// answer and first requests may overtake the hello's reply.
  caf::node_id dialed;
  caf::actor watcher;
  std::string http_url;
};

struct node::impl : std::enable_shared_from_this<node::impl> {
  caf::actor_system& sys;
  config cfg;
  storage::db& db;
  caf::actor directory;
  shard_map map;
  http::handler local;
  std::function<http::cluster_hooks::read_outcome(
      storage::column, const std::string&, std::string&, bool)>
      read_here;
  std::string http_url;
  /// Runs a continuation on an HTTP I/O thread (set before serving; empty:
  /// where the answer arrived).
  std::function<void(std::function<void()>)> io_post;

  mutable std::mutex mtx;
  std::map<std::string, peer_state> peers;
  caf::actor endpoint;
  /// Shards leaving this node: their tenants are not served meanwhile.
  std::set<uint32_t> moving;
  /// The move that set each override (newest wins).
  std::map<uint32_t, shard_moved> moves;
  std::function<bool(tenant_id)> sync_busy;
  std::function<void(tenant_id)> adopt;
  std::mutex move_mtx; // one move at a time from this node
  std::mutex movers_mtx;
  std::vector<std::thread> movers;

  std::atomic<bool> tried_all{false}; // the first round of connects ran

  // -- etcd mode (ADR 0007)
  std::shared_ptr<etcd::client> etcd;
  std::unique_ptr<etcd_membership> membership;
  /// Replicated shards (etcd mode; ADR 0008). t15-repl.
  std::shared_ptr<replicator> repl;
  /// The shard map was read (always, with static membership).
  std::atomic<bool> map_known{true};
  int64_t map_revision = 0; ///< etcd's revision of `map` (under mtx)
  std::thread coordinator;
  /// Drains, rebalancing and the claim sweep (cluster/rebalance.hpp).
  std::unique_ptr<cluster_upkeep> upkeep;
  std::thread upkeeper;
  /// Set before this node stops its endpoint: only then does the endpoint
  /// take an exit message (any member could send one).
  std::atomic<bool> closing{false};
  /// Runs the requests other nodes forward here.
  std::mutex served_mtx;
  std::unique_ptr<work_pool> served;
  std::mutex stop_mtx;
  std::condition_variable stop_cv;
  bool stopping = false;
  std::thread connector;

  impl(caf::actor_system& s, config c, storage::db& d, caf::actor dir)
      : sys(s), cfg(std::move(c)), db(d), directory(std::move(dir)) {
    if (!cfg.etcd_endpoints.empty()) {
      etcd = std::make_shared<etcd::client>(
          cfg.etcd_endpoints,
          std::min<std::chrono::milliseconds>(cfg.request_timeout,
                                              std::chrono::seconds(3)),
          cfg.etcd_security);
      // Nothing is placed before the map is read from etcd.
      map_known = false;
      etcd_membership::settings ms;
      ms.node_id = cfg.node_id;
      ms.lease_ttl = cfg.lease_ttl;
      ms.initial_members = cfg.initial_members;
      ms.shard_count = cfg.shard_count;
      ms.replication_factor = cfg.replication.factor;
      // Called on the coordinator thread, which ends (stop()) before this
      // goes.
      etcd_membership::callbacks cb;
      cb.members = [this](auto list) {
        take_members(std::move(list));
      };
      cb.map = [this](map_record rec, int64_t revision) {
        take_map(std::move(rec), revision);
      };
      cb.after_round = [this] {
        coordinate();
      };
      cb.rejoined = [this] {
        forget_connections();
      };
      membership = std::make_unique<etcd_membership>(etcd, std::move(ms),
                                                     std::move(cb));
      repl = std::make_shared<replicator>(
          sys, db, cfg.node_id, cfg.shard_count, cfg.replication,
          [this](const std::string& id) { return peer(id); });
      make_upkeep();
    }
    std::vector<std::string> ids{cfg.node_id};
    for (auto& p : cfg.peers) {
      ids.push_back(p.id);
      peers[p.id].m = p;
    }
    map = shard_map(ids, cfg.shard_count);
  }

  bool clustered() const {
    return !cfg.peers.empty() || etcd != nullptr;
  }

  /// t15-ops: the upkeep thread's view of this node (cluster/rebalance.hpp);
  /// it ends (stop()) before this goes.
  void make_upkeep() {
    cluster_upkeep::hooks h;
    h.snapshot = [this]() -> std::optional<cluster_upkeep::view> {
      if (!ready())
        return std::nullopt;
      cluster_upkeep::view v;
      std::lock_guard<std::mutex> guard{mtx};
      for (uint32_t shard = 0; shard < map.shard_count(); ++shard)
        v.owners.push_back(map.owner(shard));
      v.connected.push_back(cfg.node_id);
      for (auto& [id, p] : peers)
        if (p.handle)
          v.connected.push_back(id);
      // The roles changed with the map, under mtx (take_map): the same
      // version as the owners above.
      auto roles = repl->roles();
      v.followers = roles.followers;
      v.followers.resize(v.owners.size());
      v.factor = cfg.replication.factor;
      for (uint32_t shard = 0; shard < v.owners.size(); ++shard)
        if (v.owners[shard] == cfg.node_id)
          v.caught_up[shard] = repl->caught_up(shard);
      return v;
    };
    h.move = [this](uint32_t shard, const std::string& to) {
      return move(shard, to).error;
    };
    h.change_follower
        = [this](uint32_t shard, const std::string& id, bool add) {
            return membership->change_follower(shard, id, add);
          };
    auto sweep = std::make_unique<claim_sweep>(
        etcd, membership->prefix(), cfg.claim_grace, db, [this](tenant_id t) {
          return map_known && owner(t) == cfg.node_id && !is_moving(t);
        });
    upkeep = std::make_unique<cluster_upkeep>(etcd, membership->prefix(),
                                              cfg.node_id, cfg.rebalance_rate,
                                              std::move(h), std::move(sweep));
  }

  /// A node that may own shards: this one or a peer (static: the
  /// configured members; etcd: the registered ones). Under mtx.
  bool is_member(const std::string& id) const {
    if (!etcd)
      return std::find(map.members().begin(), map.members().end(), id)
             != map.members().end();
    return id == cfg.node_id || peers.count(id) > 0;
  }

  static http::response no_map_answer() {
    return unavailable("this node has not read the cluster's shard map from "
                       "etcd yet; retry");
  }

  std::string owner(tenant_id t) const {
    std::lock_guard<std::mutex> guard{mtx};
    return map.owner(shard_of(t, map.shard_count()));
  }

  /// Owned here and not on its way to another node, by a node whose etcd
  /// lease is certainly live (see etcd_membership::lease_live).
  bool serves(tenant_id t) const {
    if (!map_known || !lease_live())
      return false;
    std::lock_guard<std::mutex> guard{mtx};
    auto shard = shard_of(t, map.shard_count());
    return map.owner(shard) == cfg.node_id && moving.count(shard) == 0;
  }

  /// With etcd: this node's lease is certainly live (t15-jepsen).
  bool lease_live() const {
    return !membership || membership->lease_live();
  }

  static http::response lapsed_answer() {
    return unavailable("this node's cluster lease may have lapsed: it does "
                       "not answer for its organizations until it has "
                       "heard from etcd; retry");
  }

  bool is_moving(tenant_id t) const {
    std::lock_guard<std::mutex> guard{mtx};
    return moving.count(shard_of(t, map.shard_count())) > 0;
  }

  caf::actor peer(const std::string& id) const {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = peers.find(id);
    return i == peers.end() ? caf::actor{} : i->second.handle;
  }

  // -- which tenant a request names
  // ---------------------------------------------

  /// What a request names: a tenant, or a user (the key of the user's
  /// global lookup, and the size of its value) whose tenant a lookup finds.
  struct named {
    std::optional<tenant_id> tenant;
    std::string user_key;
    size_t value_size = 0;
  };

  static named names(const http::request& req) {
    named out;
    for (auto prefix :
         {"/api/v1/orgs/", "/admin/v1/orgs/", "/admin/v1/tenants/"})
      if (auto seg = segment_after(req.path, prefix)) {
        out.tenant = tenant_id::parse(*seg);
        return out;
      }
    if (req.path == "/webhooks/graph"
        || req.path == "/webhooks/graph/lifecycle") {
      http::query_params q;
      if (http::parse_query(req.query, q))
        if (auto org = http::find_param(q, "org"))
          out.tenant = tenant_id::parse(*org);
      return out;
    }
    auto user = segment_after(req.path, "/admin/v1/users/");
    // A live actor lives on its tenant's owner: a tenant actor by the
    // tenant's id, a mailbox or calendar actor by its user's.
    if (auto id = segment_after(req.path, "/admin/v1/actors/tenant/")) {
      out.tenant = tenant_id::parse(*id);
      return out;
    }
    for (auto prefix :
         {"/admin/v1/actors/mailbox/", "/admin/v1/actors/calendar/"})
      if (!user)
        user = segment_after(req.path, prefix);
    if (!user)
      return out;
    if (user->find('@') != std::string::npos) {
      std::string email;
      if (json::normalize_email(*user, email)) {
        out.user_key = storage::keys::email_lookup(email);
        out.value_size = 16;
      }
    } else if (auto u = user_id::parse(*user)) {
      out.user_key = storage::keys::user_lookup(*u);
      out.value_size = 8;
    }
    return out;
  }

  using resolved = std::function<void(std::optional<tenant_id>, bool down)>;

  /// The tenant a request is for, if it names one (directly, or a user
  /// found by a global lookup: this node first, then the others), with
  /// `down` true when a node that may hold the user could not be asked.
  /// `k` runs at once when no other node had to be asked; else on an HTTP
  /// I/O thread once they answered, so no thread waits on the cluster.
  void resolve_tenant(const http::request& req, resolved k) {
    using outcome = http::cluster_hooks::read_outcome;
    auto n = names(req);
    if (n.user_key.empty())
      return k(n.tenant, false);
    auto size = n.value_size;
    auto take = [size, k](outcome got, const std::string& v) {
      if (got == outcome::found && v.size() == size)
        return k(tenant_id{storage::keys::get_be64(v, 0)}, false);
      k(std::nullopt, got == outcome::unavailable);
    };
    std::string v;
    auto got = read_here(storage::column::lookup, n.user_key, v, false);
    if (got != outcome::missing)
      return take(got, v);
    read_remote_async(storage::column::lookup, {n.user_key}, false,
                      [take](std::vector<http::cluster_hooks::read_answer> a) {
                        take(a[0].outcome, a[0].value);
                      });
  }

  // -- forwarding
  // ---------------------------------------------------------------

  void
  forward(const std::string& owner, http::request&& req, http::responder_ptr r,
          std::chrono::milliseconds timeout = std::chrono::milliseconds{0}) {
    auto h = peer(owner);
    if (!h)
      return r->reply(unavailable("node " + owner
                                  + ", which owns this organization, is "
                                    "unreachable; retry"));
    http_forward f;
    f.method = std::move(req.method);
    f.target = std::move(req.target);
    f.headers = std::move(req.headers);
    // The request's id goes along as its X-Request-Id (the client's own,
    // if any, replaced): the owner, trusting a member, logs the same id.
    f.headers.erase(
        std::remove_if(f.headers.begin(), f.headers.end(),
                       [](const auto& h) { return h.first == "x-request-id"; }),
        f.headers.end());
    if (!req.request_id.empty())
      f.headers.emplace_back("x-request-id", req.request_id);
    f.body = std::move(req.body);
    f.via = cfg.node_id;
    f.remote = std::move(req.remote);
    metrics::node().forwarded(owner);
    if (timeout.count() == 0)
      timeout = cfg.request_timeout;
    // The receiving node's line of the request: where it went and how it
    // ended (the owner logs the rest under the same id). No path: paths
    // may carry invitation tokens.
    auto trace = [ctx = log::context{req.request_id, {}, {}},
                  what = f.method + " request to node "
                         + owner](const std::string& outcome) {
      log::scope in{ctx};
      log::info("cluster: forwarded a " + what + ": " + outcome);
    };
    sys.spawn([h, timeout, owner, r, trace,
               f = std::move(f)](caf::event_based_actor* self) mutable {
      self->request(h, timeout, forward_atom_v, std::move(f))
          .then(
              [r, trace](http_answer& a) {
                trace(std::to_string(a.status));
                r->reply(to_response(a));
              },
              [r, owner, trace](caf::error&) {
                trace("no answer in time");
                r->reply(unavailable("node " + owner
                                     + " did not answer in time; retry"));
              });
    });
  }

  void serve_here(http::request&& req, http::responder_ptr r) {
    local(std::move(req),
          std::make_shared<served_by>(std::move(r), cfg.node_id));
  }

  void handle(http::request&& req, http::responder_ptr r) {
    log::scope in{log::context{req.request_id, {}, {}}};
    if (!clustered())
      return serve_here(std::move(req), std::move(r));
    if (!map_known && (is_tenant_listing(req) || unrouted_notification(req)))
      return r->reply(no_map_answer());
    if (is_tenant_listing(req))
      return gather_tenants(std::move(req), std::move(r));
    if (unrouted_notification(req))
      return route_notifications(std::move(req), std::move(r));
    auto held = std::make_shared<http::request>(std::move(req));
    auto self = shared_from_this();
    resolve_tenant(*held,
                   [self, held, r](std::optional<tenant_id> t, bool down) {
                     self->route(std::move(*held), r, t, down);
                   });
  }

  /// Serves or forwards a request once its tenant is known.
  void route(http::request&& req, http::responder_ptr r,
             std::optional<tenant_id> t, bool down) {
    if (down)
      return r->reply(unavailable("a node that may hold this user is "
                                  "unreachable; retry"));
    if (!map_known && (t || moved_shard_of(req)))
      return r->reply(no_map_answer());
    if (!t) {
      if (auto shard = moved_shard_of(req)) {
        std::string o;
        {
          std::lock_guard<std::mutex> guard{mtx};
          o = map.owner(*shard);
        }
        if (o != cfg.node_id)
          return forward(o, std::move(req), std::move(r),
                         std::chrono::seconds(120));
      }
      return serve_here(std::move(req), std::move(r));
    }
    auto o = owner(*t);
    if (o == cfg.node_id) {
      if (is_moving(*t))
        return r->reply(moving_answer());
      if (!lease_live())
        return r->reply(lapsed_answer());
      return serve_here(std::move(req), std::move(r));
    }
    forward(o, std::move(req), std::move(r));
  }

  static http::response moving_answer() {
    return unavailable("this organization is moving between nodes; retry");
  }

  /// POST /admin/v1/shards/{shard}/move runs on the shard's owner.
  std::optional<uint32_t> moved_shard_of(const http::request& req) const {
    auto seg = segment_after(req.path, "/admin/v1/shards/");
    if (!seg || req.path != "/admin/v1/shards/" + *seg + "/move")
      return std::nullopt;
    try {
      size_t used = 0;
      auto n = std::stoul(*seg, &used);
      if (used == seg->size() && n < map.shard_count())
        return static_cast<uint32_t>(n);
    } catch (...) {
    }
    return std::nullopt;
  }

  /// A request another node forwarded: served here if this node owns it.
  void serve_forwarded(http_forward& f, caf::actor self_handle,
                       uint64_t ticket) {
    http::request req;
    req.method = std::move(f.method);
    req.target = std::move(f.target);
    auto q = req.target.find('?');
    if (!http::percent_decode(req.target.substr(0, q), req.path, false))
      req.path = req.target.substr(0, q);
    if (q != std::string::npos)
      req.query = req.target.substr(q + 1);
    req.headers = std::move(f.headers);
    req.request_id = request_id_or_new(req.header("x-request-id"));
    req.body = std::move(f.body);
    // The client's own address (members are trusted to report it), so that
    // per-address limits count the client and not the forwarding node.
    req.remote = f.remote.empty() ? "node " + f.via : std::move(f.remote);
    http::responder_ptr r = to_endpoint(std::move(self_handle), ticket);
    // Off the endpoint actor: a handler may block (storage, a lookup that
    // asks the other nodes), and forwarded requests must not queue behind
    // each other.
    auto self = shared_from_this();
    auto held = std::make_shared<http::request>(std::move(req));
    resolve_tenant(*held, [self, held, r](std::optional<tenant_id> t, bool) {
      if (t && !self->serves(*t))
        // Moving, or the two nodes disagree on the owner (one has not
        // heard of a move yet): the client retries rather than the
        // request going round.
        return r->reply(moving_answer());
      auto job = [self, held, r] {
        self->serve_here(std::move(*held), r);
      };
      bool queued = false;
      {
        std::lock_guard<std::mutex> guard{self->served_mtx};
        queued = self->served && self->served->try_post(std::move(job), 10000);
      }
      if (!queued)
        r->reply(unavailable("this node is overloaded with forwarded requests "
                             "or stopping; retry"));
    });
  }

  // -- notifications without a routing hint
  // ------------------------------------------------------

  /// A Graph notification POST whose URL does not name the organization
  /// (a subscription made before URLs carried it): Graph batches every
  /// subscription of one URL together, so the collection is split by the
  /// subscriptions' tenants (looked up across the cluster) and each part
  /// goes to its owner; 202 only when every part was acknowledged.
  bool unrouted_notification(const http::request& req) const {
    if (req.method != "POST"
        || (req.path != "/webhooks/graph"
            && req.path != "/webhooks/graph/lifecycle"))
      return false;
    http::query_params q;
    if (!http::parse_query(req.query, q))
      return false;
    return !http::find_param(q, "org")
           && !http::find_param(q, "validationToken");
  }

  struct acks {
    std::mutex mtx;
    size_t waiting = 0;
    std::optional<http::response> refusal; // the first part not acknowledged
    http::responder_ptr r;
  };

  static void part_answered(const std::shared_ptr<acks>& a,
                            http::response res) {
    std::lock_guard<std::mutex> guard{a->mtx};
    if (res.status / 100 != 2 && !a->refusal)
      a->refusal = std::move(res);
    if (--a->waiting > 0)
      return;
    if (a->refusal)
      return a->r->reply(std::move(*a->refusal));
    http::response ok;
    ok.status = 202;
    a->r->reply(std::move(ok));
  }

  /// One notification of an unrouted POST and the member that owns its
  /// subscription ("" while unknown).
  struct routed_item {
    std::string subscription;
    std::string json;
    std::string owner;
  };

  /// Splits the POST by owner: the lookups this node can answer at once,
  /// the rest in one batch per other node, asked from an actor so that no
  /// I/O thread waits on the cluster.
  void route_notifications(http::request&& req, http::responder_ptr r) {
    simdjson::dom::parser parser;
    simdjson::dom::element doc;
    simdjson::dom::array items;
    if (parser.parse(req.body).get(doc) || doc["value"].get_array().get(items))
      return serve_here(std::move(req), std::move(r)); // refused there
    if (items.size() > cfg.max_notifications_per_post)
      return r->reply(
          http::too_many_notifications(cfg.max_notifications_per_post));
    auto list = std::make_shared<std::vector<routed_item>>();
    std::map<std::string, std::string> known; // subscription -> owner
    std::vector<std::string> unknown;
    for (auto item : items) {
      routed_item x;
      x.json = simdjson::minify(item);
      std::string_view sub;
      if (!item["subscriptionId"].get_string().get(sub)) {
        x.subscription = std::string{sub};
        auto [at, fresh] = known.emplace(x.subscription, "");
        if (fresh) {
          std::string v;
          if (read_here(storage::column::lookup,
                        storage::keys::subscription_lookup(sub), v, false)
                  == http::cluster_hooks::read_outcome::found
              && v.size() >= 8)
            at->second = owner(tenant_id{storage::keys::get_be64(v, 0)});
          else
            unknown.push_back(x.subscription);
        }
        x.owner = at->second;
      }
      list->push_back(std::move(x));
    }
    if (unknown.empty())
      return dispatch_notifications(std::move(req), *list, std::move(r));
    // Ask every other node for the subscriptions this one does not hold.
    key_reads kr;
    kr.column = static_cast<uint8_t>(storage::column::lookup);
    for (auto& sub : unknown)
      kr.keys.push_back(storage::keys::subscription_lookup(sub));
    bool someone_down = false;
    auto targets = live_peers(someone_down);
    struct gathering {
      size_t waiting = 0;
      bool down = false;
      std::map<std::string, std::string> found; // subscription -> owner
    };
    auto g = std::make_shared<gathering>();
    g->waiting = targets.size();
    g->down = someone_down;
    auto self_node = shared_from_this();
    auto finish = [self_node, g, list, unknown, r,
                   req = std::make_shared<http::request>(std::move(req))] {
      bool unresolved = false;
      for (auto& x : *list) {
        if (!x.owner.empty() || x.subscription.empty())
          continue;
        auto i = g->found.find(x.subscription);
        if (i != g->found.end())
          x.owner = i->second;
        else
          unresolved = true;
      }
      if (unresolved && g->down)
        return r->reply(unavailable("a node that may own these "
                                    "subscriptions is unreachable; retry"));
      self_node->dispatch_notifications(std::move(*req), *list, r);
    };
    if (targets.empty())
      return finish();
    auto timeout = cfg.request_timeout;
    sys.spawn([=](caf::event_based_actor* self) {
      for (auto& h : targets)
        self->request(h, timeout, read_atom_v, kr)
            .then(
                [=](key_values& kv) {
                  for (size_t i = 0; i < kv.values.size() && i < unknown.size();
                       ++i)
                    if (kv.values[i].found && kv.values[i].value.size() >= 8)
                      g->found[unknown[i]] = self_node->owner(tenant_id{
                          storage::keys::get_be64(kv.values[i].value, 0)});
                  if (--g->waiting == 0)
                    finish();
                },
                [=](caf::error&) {
                  g->down = true;
                  if (--g->waiting == 0)
                    finish();
                });
    });
  }

  /// Sends each owner its part (items of unknown subscriptions stay here:
  /// the engine counts and refuses them); 202 when every part was
  /// acknowledged.
  void dispatch_notifications(http::request&& req,
                              const std::vector<routed_item>& list,
                              http::responder_ptr r) {
    std::map<std::string, std::vector<const std::string*>> parts;
    for (auto& x : list)
      parts[x.owner.empty() ? cfg.node_id : x.owner].push_back(&x.json);
    auto a = std::make_shared<acks>();
    a->r = std::make_shared<served_by>(std::move(r), cfg.node_id);
    a->waiting = parts.size();
    for (auto& [node, part] : parts) {
      http::request copy = req;
      copy.body = "{\"value\":[";
      for (size_t i = 0; i < part.size(); ++i)
        copy.body += (i ? "," : "") + *part[i];
      copy.body += "]}";
      auto pr = std::make_shared<answer_to>(
          [a](http::response res) { part_answered(a, std::move(res)); });
      if (node == cfg.node_id)
        local(std::move(copy), pr);
      else
        forward(node, std::move(copy), pr);
    }
  }

  // -- cluster-wide listings
  // ----------------------------------------------------------------

  /// GET /admin/v1/tenants from any node lists every node's organizations:
  /// each node answers for its own (asked with X-Crmsync-Scope: node), and
  /// the pages merge in id order. A node that cannot answer leaves its
  /// organizations out and is named: the answer says `"incomplete":true`
  /// and `"missing_nodes"`, so an operator sees what the live nodes hold
  /// while one is down (503 only when no node answered).
  static bool is_tenant_listing(const http::request& req) {
    return req.method == "GET" && req.path == "/admin/v1/tenants"
           && req.header("x-crmsync-scope") != "node";
  }

  struct gathered {
    std::mutex mtx;
    size_t waiting = 0;
    size_t answered = 0;
    std::vector<std::string> missing; // nodes that could not answer
    std::vector<std::pair<std::string, std::string>> items; // id, JSON
    bool more = false;
    http::responder_ptr r;
    size_t limit = 100;
    /// Whether a node's item is listed (a follower's copies are not).
    std::function<bool(const std::string& id, const std::string& node)> keep;
  };

  /// Adds one node's page; replies when the last one is in.
  static void take_page(const std::shared_ptr<gathered>& g,
                        const std::string& node, http::response res) {
    std::lock_guard<std::mutex> guard{g->mtx};
    if (res.status != 200) {
      g->missing.push_back(node);
      if (res.status != 503 && g->r) {
        // An error of the request itself (bad cursor, bad token): every
        // node says the same; pass it on.
        g->r->reply(std::move(res));
        g->r = nullptr;
      }
    } else {
      simdjson::dom::parser parser;
      simdjson::dom::element doc;
      simdjson::dom::array items;
      if (parser.parse(res.body).get(doc)
          || doc["items"].get_array().get(items)) {
        log::warn("tenant listing: node " + node
                  + " answered a page that does not parse");
        g->missing.push_back(node);
      } else {
        ++g->answered;
        for (auto item : items) {
          std::string_view id;
          if (item["id"].get_string().get(id))
            continue;
          if (g->keep && !g->keep(std::string{id}, node))
            continue;
          auto text = simdjson::minify(item);
          // Each item says where the organization lives.
          text.insert(1, "\"node\":\"" + node + "\",");
          g->items.emplace_back(std::string{id}, std::move(text));
        }
        simdjson::dom::element next;
        if (!doc["next_cursor"].get(next) && !next.is_null())
          g->more = true;
      }
    }
    if (--g->waiting > 0 || !g->r)
      return;
    if (g->answered == 0)
      return g->r->reply(unavailable("no node could answer; retry"));
    std::sort(g->items.begin(), g->items.end());
    std::sort(g->missing.begin(), g->missing.end());
    json::writer w;
    w.begin_object().key("items").begin_array();
    size_t n = std::min(g->limit, g->items.size());
    for (size_t i = 0; i < n; ++i)
      w.raw(g->items[i].second);
    w.end_array();
    w.key("next_cursor");
    if (g->items.size() > n || (g->more && n > 0))
      w.value(g->items[n - 1].first);
    else
      w.null();
    w.key("incomplete").value(!g->missing.empty());
    w.key("missing_nodes").begin_array();
    for (auto& m : g->missing)
      w.value(m);
    w.end_array();
    w.end_object();
    http::response out;
    out.status = 200;
    out.body = w.take();
    g->r->reply(std::move(out));
  }

  static http::responder_ptr page_of(const std::shared_ptr<gathered>& g,
                                     const std::string& node) {
    return std::make_shared<answer_to>(
        [g, node](http::response res) { take_page(g, node, std::move(res)); });
  }

  void gather_tenants(http::request&& req, http::responder_ptr r) {
    auto g = std::make_shared<gathered>();
    g->r = std::make_shared<served_by>(std::move(r), cfg.node_id);
    if (repl) {
      auto self_node = shared_from_this();
      g->keep = [self_node](const std::string& id, const std::string& node) {
        auto t = tenant_id::parse(id);
        return !t || self_node->owner(*t) == node;
      };
    }
    http::query_params q;
    if (http::parse_query(req.query, q))
      if (auto l = http::find_param(q, "limit"))
        try {
          g->limit = std::stoul(*l);
        } catch (...) {
        }
    req.headers.emplace_back("x-crmsync-scope", "node");
    std::vector<std::string> others;
    {
      std::lock_guard<std::mutex> guard{mtx};
      for (auto& [id, p] : peers)
        others.push_back(id);
    }
    g->waiting = others.size() + 1;
    for (auto& id : others) {
      http::request copy = req;
      forward(id, std::move(copy), page_of(g, id));
    }
    local(std::move(req), page_of(g, cfg.node_id));
  }

  // -- global reads
  // ---------------------------------------------------------------

  /// The endpoints of the connected peers; `someone_down` when a member is
  /// not connected.
  std::vector<caf::actor> live_peers(bool& someone_down) const {
    std::vector<caf::actor> out;
    someone_down = false;
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& [id, p] : peers) {
      if (p.handle)
        out.push_back(p.handle);
      else
        someone_down = true;
    }
    return out;
  }

  /// Reads keys of a node-local table on every other node at once, from a
  /// short-lived actor, so that no thread waits on the cluster: `done`
  /// gets, per key, found (with the value) when a node has it, unavailable
  /// when none has it and a node could not be asked, else missing. `done`
  /// runs in that actor, or at once when there is nobody to ask.
  /// t13-async.
  void read_remote_async(storage::column c, std::vector<std::string> keys,
                         bool take, http::cluster_hooks::read_done done) {
    using outcome = http::cluster_hooks::read_outcome;
    bool someone_down = false;
    auto targets = live_peers(someone_down);
    struct gathering {
      std::vector<http::cluster_hooks::read_answer> answers;
      std::vector<bool> down;
      size_t waiting = 0;
      http::cluster_hooks::read_done done;
      void finish() {
        for (size_t i = 0; i < answers.size(); ++i)
          if (answers[i].outcome != outcome::found)
            answers[i].outcome
                = down[i] ? outcome::unavailable : outcome::missing;
        done(std::move(answers));
      }
    };
    auto g = std::make_shared<gathering>();
    g->answers.resize(keys.size());
    g->down.assign(keys.size(), someone_down);
    g->waiting = targets.size() * keys.size();
    g->done = std::move(done);
    if (g->waiting == 0)
      return g->finish();
    if (io_post)
      g->done = [post = io_post, done = std::move(g->done)](
                    std::vector<http::cluster_hooks::read_answer> a) {
        post([done, a = std::move(a)]() mutable { done(std::move(a)); });
      };
    auto timeout = cfg.request_timeout;
    sys.spawn([g, targets, keys = std::move(keys), c, take,
               timeout](caf::event_based_actor* self) {
      for (auto& h : targets)
        for (size_t i = 0; i < keys.size(); ++i)
          self->request(h, timeout, read_atom_v,
                        key_read{static_cast<uint8_t>(c), keys[i], take})
              .then(
                  [g, i](key_value& kv) {
                    auto& a = g->answers[i];
                    if (kv.found && a.outcome != outcome::found) {
                      a.outcome = outcome::found;
                      a.value = std::move(kv.value);
                    }
                    if (--g->waiting == 0)
                      g->finish();
                  },
                  [g, i](caf::error&) {
                    g->down[i] = true;
                    if (--g->waiting == 0)
                      g->finish();
                  });
    });
  }

  http::cluster_hooks::read_outcome read_remote(storage::column c,
                                                const std::string& key,
                                                std::string& value, bool take) {
    using outcome = http::cluster_hooks::read_outcome;
    bool someone_down = false;
    auto targets = live_peers(someone_down);
    caf::scoped_actor self{sys};
    key_read kr{static_cast<uint8_t>(c), key, take};
    for (auto& h : targets) {
      bool answered = false;
      key_value got;
      self->request(h, cfg.request_timeout, read_atom_v, kr)
          .receive(
              [&](key_value& kv) {
                answered = true;
                got = std::move(kv);
              },
              [&](caf::error&) {});
      if (!answered) {
        someone_down = true;
        continue;
      }
      if (got.found) {
        value = std::move(got.value);
        return outcome::found;
      }
    }
    return someone_down ? outcome::unavailable : outcome::missing;
  }

  // -- connections
  // ------------------------------------------------------------------

  void mark_down(const std::string& id, const caf::actor& h) {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = peers.find(id);
    if (i != peers.end() && i->second.handle == h) {
      i->second.handle = nullptr;
      i->second.watcher = nullptr;
      log::warn("cluster: lost node " + id);
    }
  }

  /// Takes `h` as the endpoint of peer `id` while it lives: watches it and
  /// marks the peer down when the connection or the node goes.
  void register_peer(const std::string& id, const caf::actor& h,
                     std::string url) {
    {
      std::lock_guard<std::mutex> guard{mtx};
      auto i = peers.find(id);
      if (i == peers.end() || i->second.handle == h)
        return;
    }
    auto weak = weak_from_this();
    auto watcher = sys.spawn([weak, id, h](caf::event_based_actor* w) {
      w->monitor(h);
      w->set_down_handler([weak, id, h, w](caf::down_msg&) {
        if (auto s = weak.lock())
          s->mark_down(id, h);
        w->quit();
      });
      return caf::behavior{[](hello_atom) {
      }};
    });
    {
      std::lock_guard<std::mutex> guard{mtx};
      auto& p = peers[id];
      if (p.watcher)
        caf::anon_send_exit(p.watcher, caf::exit_reason::user_shutdown);
      p.handle = h;
      p.watcher = watcher;
      p.http_url = std::move(url);
    }
    log::info("cluster: connected to node " + id);
  }

  /// Of two members, the one whose id sorts first dials the other: CAF
  /// keeps one connection per pair of nodes, and two handshakes crossing
  /// each other (both dialling at once) can leave one side's connect
  /// waiting forever.
  bool dials(const std::string& peer) const {
    return cfg.node_id < peer;
  }

  /// A dialling member said hello with its endpoint: it is connected.
  /// False when the hello is not taken (so that the dialling member
  /// tries again rather than believe it is connected: a member that
  /// registered again in etcd may say hello before this node read it).
  bool accept_hello(const std::string& id, const std::string& url,
                    const caf::actor& h, const caf::node_id& from) {
    if (!h || h.node() != from || dials(id))
      return false;
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (peers.find(id) == peers.end())
        return false;
    }
    register_peer(id, h, url);
    return true;
  }

  void connect_once(peer_state snapshot) {
    auto got
        = caf::openssl::remote_actor(sys, snapshot.m.host, snapshot.m.port);
    if (!got)
      return;
    caf::actor h = std::move(*got);
    auto dialing = [&](caf::node_id n) {
      std::lock_guard<std::mutex> guard{mtx};
      if (auto i = peers.find(snapshot.m.id); i != peers.end())
        i->second.dialed = std::move(n);
    };
    dialing(h.node());
    // The endpoint says who it is: a node at the wrong address (another
    // member's, or another cluster's) is not taken for this peer.
    std::string who;
    std::string url;
    caf::scoped_actor self{sys};
    self->request(h, cfg.request_timeout, hello_atom_v, cfg.node_id, http_url,
                  endpoint)
        .receive(
            [&](std::string& id, std::string& u) {
              who = std::move(id);
              url = std::move(u);
            },
            [&](caf::error&) {});
    if (who != snapshot.m.id) {
      dialing({});
      if (!who.empty())
        log::error("cluster: " + snapshot.m.host + ":"
                   + std::to_string(snapshot.m.port) + " is node '" + who
                   + "', expected '" + snapshot.m.id + "'");
      return;
    }
    auto id = snapshot.m.id;
    register_peer(id, h, url);
    dialing({});
    // Moves made while one of the two was away (static membership: with
    // etcd the map there is the record, see apply_known_moves, and the
    // round trip is not made).
    if (etcd)
      return;
    self->request(h, cfg.request_timeout, moved_atom_v, known_moves())
        .receive([&](shard_moves& theirs) { apply_known_moves(id, theirs); },
                 [&](caf::error&) {});
  }

  /// The moves another member knew when the two connected. Only without
  /// etcd: with it the map in etcd is the record, read at start and on
  /// every change, and a member's list holds moves the map has since
  /// overtaken (a failover took the shard back from the node a move had
  /// given it). Applied, such a move made a returning node believe it
  /// owned a shard it no longer held a row of until the next change of
  /// the map: it answered 401 for that shard's organizations (their rows
  /// were gone), and its rebalancer kept trying to move the shard to a
  /// node that rightly refused it (bench/run-failover.sh, 2026-12-07).
  void apply_known_moves(const std::string& sender, const shard_moves& theirs) {
    if (etcd)
      return;
    for (auto& m : theirs.items)
      apply_move_from(sender, m);
  }

  void connect_loop() {
    ::pthread_setname_np(::pthread_self(), "cluster-dial");
    for (;;) {
      std::vector<peer_state> missing;
      {
        std::lock_guard<std::mutex> guard{mtx};
        for (auto& [id, p] : peers)
          if (!p.handle && dials(id))
            missing.push_back(p);
      }
      for (auto& p : missing)
        connect_once(p);
      tried_all = true;
      std::unique_lock<std::mutex> lk{stop_mtx};
      if (stop_cv.wait_for(lk, cfg.reconnect_interval,
                           [&] { return stopping; }))
        return;
    }
  }

  // -- etcd: membership and the shard map (cluster/etcd_membership.hpp)
  // -------------------------------------------------------------------------

  /// Takes the registered members as the peers: newcomers are added (and
  /// dialled), members whose lease ended are dropped.
  void take_members(std::vector<etcd_membership::registered_member> list) {
    std::map<std::string, etcd_membership::registered_member> seen;
    for (auto& r : list)
      seen[r.m.id] = std::move(r);
    std::vector<caf::actor> to_stop;
    {
      std::lock_guard<std::mutex> guard{mtx};
      for (auto i = peers.begin(); i != peers.end();) {
        auto s = seen.find(i->first);
        if (s != seen.end() && s->second.m.host == i->second.m.host
            && s->second.m.port == i->second.m.port) {
          ++i;
          continue;
        }
        log::info("cluster: node " + i->first
                  + (s == seen.end() ? " left (its etcd lease ended)"
                                     : " registered a new address"));
        if (i->second.watcher)
          to_stop.push_back(i->second.watcher);
        i = peers.erase(i);
      }
      for (auto& [id, r] : seen) {
        auto [at, fresh] = peers.try_emplace(id);
        if (!fresh)
          continue;
        at->second.m = r.m;
        at->second.http_url = r.http_url;
        log::info("cluster: node " + id + " registered in etcd");
      }
    }
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
  }

  /// Takes the map read from etcd when it is newer than the one held.
  void take_map(map_record rec, int64_t revision) {
    if (rec.owners.size() != cfg.shard_count) {
      log::error("cluster: the shard map in etcd has "
                 + std::to_string(rec.owners.size()) + " shards, this node "
                 + std::to_string(cfg.shard_count)
                 + " (--shards): not serving from it");
      return;
    }
    std::set<uint32_t> gained; // shards this node owns from now on
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (revision <= map_revision)
        return;
      if (map_known)
        for (uint32_t s = 0; s < cfg.shard_count; ++s)
          if (rec.owners[s] == cfg.node_id && map.owner(s) != cfg.node_id)
            gained.insert(s);
      map = shard_map::with_owners(rec.owners);
      map_revision = revision;
      // Roles change under mtx too, so that a request routed by the new
      // map finds this node's writes allowed.
      if (repl)
        repl->set_roles(rec);
    }
    if (map_known.exchange(true)) {
      // A failover (or a move) made this node a shard's primary: its
      // organizations' calendars resume from their stored state.
      if (adopt && !gained.empty())
        for (auto t : tenants_where(
                 [&](uint32_t shard) { return gained.count(shard) > 0; }))
          adopt(tenant_id{t});
      return;
    }
    log::info("cluster: read the shard map from etcd (revision "
              + std::to_string(revision) + ")");
    // Calendar runs and mail skipped the organizations while nothing was
    // placed: they start now.
    if (adopt)
      for (auto t : tenants_where([&](uint32_t shard) {
             std::lock_guard<std::mutex> guard{mtx};
             return map.owner(shard) == cfg.node_id;
           }))
        adopt(tenant_id{t});
  }

  /// This node's lease lapsed and it registered again: the others dropped
  /// it (and forgot its hello), so every connection is made again (the
  /// members this node dials are dialled; the others dial it).
  void forget_connections() {
    std::vector<caf::actor> to_stop;
    {
      std::lock_guard<std::mutex> guard{mtx};
      for (auto& [id, p] : peers) {
        if (p.watcher)
          to_stop.push_back(p.watcher);
        p.watcher = nullptr;
        p.handle = nullptr;
      }
    }
    for (auto& a : to_stop)
      caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
    log::warn("cluster: registered again after the etcd lease lapsed; "
              "connecting to the members again");
  }

  /// After each round with etcd: failover and follower repairs
  /// (replicator::coordinate) over the members registered now.
  void coordinate() {
    if (!repl || !map_known || !membership->reachable())
      return;
    std::set<std::string> live{cfg.node_id};
    {
      std::lock_guard<std::mutex> guard{mtx};
      for (auto& [id, p] : peers)
        live.insert(id);
    }
    repl->coordinate(*membership, live);
  }

  /// The organizations stored here whose shard passes `pick`.
  std::set<uint64_t>
  tenants_where(const std::function<bool(uint32_t)>& pick) const {
    std::set<uint64_t> out;
    db.scan(storage::column::orgs, "", "",
            [&](std::string_view k, std::string_view) {
              if (k.size() == 8) {
                tenant_id t{storage::keys::get_be64(k, 0)};
                if (pick(shard_of(t, map.shard_count())))
                  out.insert(t.value);
              }
              return true;
            });
    return out;
  }

  /// Ready for a load balancer: static membership, once every peer was
  /// tried; with etcd, registered, the map read, and every registered
  /// member connected (forwards and global reads can reach them).
  bool ready() const {
    if (!etcd)
      return tried_all.load();
    if (!membership->registered() || !map_known || !membership->reachable())
      return false;
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& [id, p] : peers)
      if (!p.handle)
        return false;
    return true;
  }

  // -- shard moves
  // -------------------------------------------------------------------------

  static std::string move_key(uint32_t shard) {
    return "cluster/move/" + std::to_string(shard);
  }

  /// Static membership only: applies a move if it is newer than what this
  /// node knows, persists it, and takes on the tenants it brings here.
  /// With etcd no move names an owner: the map in etcd does (take_map).
  bool apply_move(const shard_moved& m) {
    if (etcd)
      return false;
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (m.shard >= map.shard_count() || !is_member(m.node))
        return false;
      auto i = moves.find(m.shard);
      if (i != moves.end() && i->second.epoch >= m.epoch)
        return false;
      moves[m.shard] = m;
      map.set_owner(m.shard, m.node);
    }
    storage::write_batch b;
    b.put(storage::column::meta, move_key(m.shard),
          m.node + "|" + std::to_string(m.epoch));
    if (auto err = db.write(b))
      log::error("cluster: cannot store the move of shard "
                 + std::to_string(m.shard) + ": " + sys.render(err));
    log::info("cluster: shard " + std::to_string(m.shard) + " is on node "
              + m.node + " now");
    if (m.node == cfg.node_id && adopt)
      for (auto t : m.tenants)
        adopt(tenant_id{t});
    return true;
  }

  /// A member's message that a shard moved. Static membership: the switch
  /// itself, applied when that member may make it (apply_move_from). With
  /// etcd it names no owner: it says that the map there changed, and this
  /// node reads the map now rather than at its next poll (a message that
  /// arrives late, or a move the map has overtaken since, cannot place a
  /// shard). True once the map was read; the shard's target answers only
  /// then, so it serves the shard before the others send it requests.
  bool told_moved(const std::string& sender, const shard_moved& m) {
    if (!etcd)
      return apply_move_from(sender, m);
    if (sender.empty())
      return false;
    return membership->read_map_now();
  }

  /// A switch another member sent: applied only when that member may make
  /// it (may_move).
  bool apply_move_from(const std::string& sender, const shard_moved& m) {
    if (!may_move(sender, m.shard, m.node)) {
      log::warn("cluster: refused the move of shard " + std::to_string(m.shard)
                + " to " + m.node + " from "
                + (sender.empty() ? "an unknown sender" : sender));
      return false;
    }
    apply_move(m);
    return true;
  }

  void load_moves() {
    std::string prefix = "cluster/move/";
    db.scan(
        storage::column::meta, prefix, storage::keys::prefix_end(prefix),
        [&](std::string_view k, std::string_view v) {
          shard_moved m;
          auto bar = v.find('|');
          if (bar == std::string_view::npos)
            return true;
          try {
            m.shard = static_cast<uint32_t>(
                std::stoul(std::string{k.substr(prefix.size())}));
            m.node = std::string{v.substr(0, bar)};
            m.epoch = std::stoll(std::string{v.substr(bar + 1)});
          } catch (...) {
            return true;
          }
          std::lock_guard<std::mutex> guard{mtx};
          if (m.shard < map.shard_count()
              && std::find(map.members().begin(), map.members().end(), m.node)
                     != map.members().end()) {
            moves[m.shard] = m;
            map.set_owner(m.shard, m.node);
          }
          return true;
        });
  }

  shard_moves known_moves() const {
    shard_moves out;
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& [shard, m] : moves) {
      out.items.push_back(m);
      out.items.back().tenants.clear();
    }
    return out;
  }

  /// Whether a shard move carries rows of this column family (the node's
  /// own bookkeeping stays where it is; so do reminders, which are keyed by
  /// due time, not by tenant: the owner of a moved entity has to set its
  /// reminders again on the new node). Of `sessions`, only the page
  /// sessions of the organizations' users move (t15-sessions).
  static bool moves_with_shard(storage::column c) {
    return c != storage::column::meta && c != storage::column::reminders;
  }

  /// The rows of these tenants in every table that moves with a shard,
  /// their global lookup entries and their users' page sessions included
  /// (storage/org_rows.hpp).
  caf::error collect_rows(const std::set<uint64_t>& tenants,
                          std::vector<stored_row>& out) const {
    std::vector<storage::column> cols;
    for (auto c : storage::org_columns())
      if (moves_with_shard(c))
        cols.push_back(c);
    cols.push_back(storage::column::sessions);
    storage::org_row_cursor rows{db, tenants, std::move(cols)};
    return rows.all([&](storage::column c, std::string_view k,
                        std::string_view v) {
      out.push_back({static_cast<uint8_t>(c), std::string{k}, std::string{v}});
    });
  }

  /// Stops the directory's actors of these tenants and waits until they
  /// are gone (what they hold in memory must not outlive the move).
  bool passivate(const std::set<uint64_t>& tenants) {
    caf::scoped_actor self{sys};
    for (int round = 0; round < 200; ++round) {
      directory_stats ds;
      bool got = false;
      self->request(directory, cfg.request_timeout, stats_atom_v)
          .receive(
              [&](directory_stats& x) {
                ds = std::move(x);
                got = true;
              },
              [&](caf::error&) {});
      if (!got)
        return false;
      bool any = false;
      for (auto& a : ds.live) {
        if (tenants.count(a.key.tenant.value) == 0)
          continue;
        any = true;
        if (!a.stopping)
          caf::anon_send(directory, passivate_atom_v, a.key);
      }
      if (!any)
        return true;
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
    return false;
  }

  struct move_result {
    caf::error error; ///< why the move did not happen (none: it did)
    std::string from;
    size_t tenants = 0;
    size_t rows = 0;
  };

  /// Moves a shard this node owns to `to`: its requests get 503 meanwhile,
  /// its syncs and actors stop, its rows are copied, the target takes
  /// ownership, everyone is told, and the old copy is removed.
  move_result move(uint32_t shard, const std::string& to) {
    move_result res;
    res.from = cfg.node_id;
    auto fail = [&](crm_errc x, std::string code, std::string message) {
      res.error = make_crm_error(x, std::move(code), std::move(message));
      return res;
    };
    if (shard >= map.shard_count())
      return fail(crm_errc::not_found, "not_found", "no such shard");
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (!is_member(to))
        return fail(crm_errc::invalid_input, "invalid_input",
                    "no member '" + to + "'");
    }
    std::unique_lock<std::mutex> one{move_mtx, std::try_to_lock};
    if (!one.owns_lock())
      return fail(crm_errc::conflict, "move_in_progress",
                  "another shard move from this node is in progress");
    {
      std::lock_guard<std::mutex> guard{mtx};
      if (map.owner(shard) != cfg.node_id)
        return fail(crm_errc::unavailable, "node_unavailable",
                    "this node no longer owns the shard; retry");
      if (to == cfg.node_id)
        return res; // already here
      moving.insert(shard);
    }
    auto done = [&] {
      std::lock_guard<std::mutex> guard{mtx};
      moving.erase(shard);
    };
    auto target = peer(to);
    if (!target) {
      done();
      return fail(crm_errc::unavailable, "node_unavailable",
                  "node " + to + " is unreachable; retry");
    }
    auto tenants = tenants_where([&](uint32_t s) { return s == shard; });
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    for (auto t : tenants)
      while (sync_busy && sync_busy(tenant_id{t})) {
        if (std::chrono::steady_clock::now() > deadline) {
          done();
          return fail(crm_errc::unavailable, "busy",
                      "calendar syncs of the shard did not stop in time; "
                      "retry");
        }
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
      }
    if (!passivate(tenants)) {
      done();
      return fail(crm_errc::unavailable, "busy",
                  "the shard's actors did not stop; retry");
    }
    caf::scoped_actor self{sys};
    auto send = [&](auto&&... xs) {
      bool ok = false;
      self->request(target, std::chrono::seconds(60), xs...)
          .receive([&](bool x) { ok = x; }, [&](caf::error&) {});
      return ok;
    };
    // t15-balance: to a follower of the shard the primary role is handed
    // over; the target holds the rows already.
    bool handing = repl && follows(shard, to);
    std::vector<stored_row> rows;
    if (handing) {
      if (auto err = hand_over(shard, to)) {
        done();
        res.error = std::move(err);
        return res;
      }
    } else if (auto err = collect_rows(tenants, rows)) {
      done();
      return fail(crm_errc::storage_failure, "storage_failure",
                  "reading the shard's rows failed: " + sys.render(err));
    }
    constexpr size_t chunk_bytes = 1 << 20;
    for (size_t i = 0; i < rows.size();) {
      shard_rows part;
      part.shard = shard;
      size_t bytes = 0;
      while (i < rows.size() && (bytes < chunk_bytes || part.rows.empty())) {
        bytes += rows[i].key.size() + rows[i].value.size();
        part.rows.push_back(rows[i++]);
      }
      if (!send(rows_atom_v, std::move(part))) {
        done();
        return fail(crm_errc::unavailable, "node_unavailable",
                    "copying the shard to " + to + " failed; retry");
      }
    }
    // The switch: the target first (it serves from then on), then this
    // node, then everyone else (a node that is away learns it when it
    // connects again).
    shard_moved m;
    m.shard = shard;
    m.node = to;
    m.epoch = std::max<int64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(
            std::chrono::system_clock::now().time_since_epoch())
            .count(),
        last_epoch(shard) + 1);
    m.tenants.assign(tenants.begin(), tenants.end());
    if (etcd) {
      // The switch is the map in etcd, written against its revision and
      // taken here from what was written (this node owns the shard no
      // more; requests for it go to the target). The target reads the
      // map before it answers; one that could not, reads it at its next
      // poll (it holds the rows already).
      if (auto err
          = handing ? caf::error{} : membership->write_move(shard, to)) {
        done();
        res.error = std::move(err);
        return res;
      }
      if (!send(moved_atom_v, m))
        log::warn("cluster: node " + to + " did not read the map giving it "
                  + "shard " + std::to_string(shard)
                  + " when told; it will at its next poll");
    } else {
      if (!send(moved_atom_v, m)) {
        done();
        return fail(crm_errc::unavailable, "node_unavailable",
                    "node " + to + " did not take the shard; retry");
      }
      apply_move(m);
    }
    // Sent with this node as the sender: members accept a switch only from
    // the shard's owner (may_move), and an anonymous message has none;
    // with etcd they read the map when told.
    for (auto& [id, h] : peer_handles())
      if (id != to)
        self->send(h, moved_atom_v, m);
    // A hand-over keeps the copy: this node follows the shard now.
    storage::write_batch b;
    for (auto& row : rows)
      b.del(static_cast<storage::column>(row.column), row.key);
    storage::unreplicated_scope bypass;
    if (handing)
      metrics::node().hand_over();
    else if (auto err = db.write(b, storage::claims_effect::keep))
      log::error("cluster: the old copy of shard " + std::to_string(shard)
                 + " could not be removed: " + sys.render(err));
    done();
    res.tenants = tenants.size();
    res.rows = rows.size();
    return res;
  }

  /// Whether `id` follows `shard` in the map this node took last.
  bool follows(uint32_t shard, const std::string& id) const {
    auto roles = repl->roles();
    if (shard >= roles.followers.size())
      return false;
    auto& f = roles.followers[shard];
    return std::find(f.begin(), f.end(), id) != f.end();
  }

  /// A hand-over of a shard this node is the primary of to its follower
  /// `to` (t15-balance): the shard's writes are refused here (503, the
  /// caller retries), `to` confirms every write this node committed, then
  /// the map in etcd makes it the owner with the next epoch and this node
  /// its follower. Nothing is copied: the new primary's followers that
  /// hold what it held (this node among them) go on with its tail
  /// (replicator, base_epoch). Writes are allowed again once the map is
  /// taken (this node is fenced by then) or the hand-over failed.
  caf::error hand_over(uint32_t shard, const std::string& to) {
    repl->freeze(shard);
    auto err = repl->await_in_sync(
        shard, to, std::chrono::steady_clock::now() + std::chrono::seconds(10));
    if (!err)
      err = membership->write_hand_over(shard, to);
    repl->thaw(shard);
    if (!err)
      log::info("cluster: handed shard " + std::to_string(shard) + " over to "
                + to + " (an in-sync follower: nothing copied)");
    return err;
  }

  /// t15-ops: a drain's mark in etcd, and its progress as this node's map
  /// shows it (POST/GET/DELETE /admin/v1/cluster/members/{id}/drain).
  caf::expected<std::string> drain(const std::string& id,
                                   http::cluster_hooks::drain_action action) {
    using action_t = http::cluster_hooks::drain_action;
    if (action != action_t::cancel) {
      std::lock_guard<std::mutex> guard{mtx};
      if (!is_member(id) && (!map_known || map.count_of(id) == 0))
        return make_crm_error(crm_errc::not_found, "not_found",
                              "no member '" + id + "'");
    }
    if (action != action_t::status)
      if (auto err = upkeep->set_drain(id, action == action_t::start))
        return err;
    auto marked = upkeep->drained(id);
    if (!marked)
      return marked.error();
    uint64_t left = 0;
    {
      std::lock_guard<std::mutex> guard{mtx};
      left = map_known ? map.count_of(id) : 0;
    }
    json::writer w;
    w.begin_object();
    w.key("node").value(id);
    w.key("draining").value(*marked);
    w.key("shards_left").value(left);
    w.key("done").value(*marked && left == 0 && map_known);
    w.key("rebalance_rate").value(static_cast<uint64_t>(cfg.rebalance_rate));
    w.end_object();
    return w.take();
  }

  int64_t last_epoch(uint32_t shard) const {
    std::lock_guard<std::mutex> guard{mtx};
    auto i = moves.find(shard);
    return i == moves.end() ? 0 : i->second.epoch;
  }

  std::vector<std::pair<std::string, caf::actor>> peer_handles() const {
    std::vector<std::pair<std::string, caf::actor>> out;
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& [id, p] : peers)
      if (p.handle)
        out.emplace_back(id, p.handle);
    return out;
  }

  /// The member whose actor system `n` is (a connected peer), or "".
  std::string member_of(const caf::node_id& n) const {
    std::lock_guard<std::mutex> guard{mtx};
    for (auto& [id, p] : peers)
      if ((p.handle && p.handle.node() == n) || (p.dialed && p.dialed == n))
        return id;
    return {};
  }

  /// Only the shard's owner moves it: rows and the switch of a shard come
  /// from the member that owns it (as this node sees it) or, for a switch
  /// this node missed, from the member it names as the new owner.
  bool may_move(const std::string& sender, uint32_t shard,
                const std::string& to) const {
    if (sender.empty())
      return false;
    std::lock_guard<std::mutex> guard{mtx};
    return shard < map.shard_count()
           && (map.owner(shard) == sender || to == sender);
  }

  /// Rows of a moving shard, sent by its owner: each must belong to a
  /// tenant of that shard, in a column family that moves with it.
  bool store_rows(const std::string& sender, shard_rows& part) {
    if (!may_move(sender, part.shard, {})) {
      log::warn("cluster: refused rows of shard " + std::to_string(part.shard)
                + " from " + (sender.empty() ? "an unknown sender" : sender)
                + ", which does not own it");
      return false;
    }
    storage::write_batch b;
    for (auto& row : part.rows) {
      if (row.column >= storage::column_count)
        return false;
      auto col = static_cast<storage::column>(row.column);
      auto t = storage::row_tenant(col, row.key, row.value);
      if (!moves_with_shard(col) || !t
          || shard_of(*t, map.shard_count()) != part.shard) {
        log::warn("cluster: refused rows from " + sender
                  + " that are not of shard " + std::to_string(part.shard));
        return false;
      }
      b.put(static_cast<storage::column>(row.column), std::move(row.key),
            std::move(row.value));
    }
    // A moved shard's rows: the new owner replicates from its own epoch.
    storage::unreplicated_scope bypass;
    if (auto err = db.write(b)) {
      log::error("cluster: cannot store rows of shard "
                 + std::to_string(part.shard) + ": " + sys.render(err));
      return false;
    }
    return true;
  }

  // -- views
  // -------------------------------------------------------------------------

  std::string describe() const {
    json::writer w;
    auto drained = upkeep ? upkeep->draining() : std::set<std::string>{};
    std::lock_guard<std::mutex> guard{mtx};
    w.begin_object();
    w.key("node_id").value(cfg.node_id);
    w.key("shard_count").value(static_cast<uint64_t>(map.shard_count()));
    w.key("membership").value(etcd ? "etcd" : "static");
    if (etcd) {
      w.key("etcd").begin_object();
      w.key("reachable").value(membership->reachable());
      w.key("registered").value(membership->registered());
      w.key("shard_map_revision");
      if (map_known)
        w.value(map_revision);
      else
        w.null();
      w.end_object();
    }
    if (repl)
      repl->describe(w);
    auto roles_held = roles_by_node();
    w.key("members").begin_array();
    auto one = [&](const std::string& id, const std::string& address,
                   const std::string& url, bool up, bool self,
                   bool registered = true) {
      w.begin_object();
      w.key("id").value(id);
      w.key("cluster_address").value(address);
      w.key("http_url").value_or_null(url);
      w.key("up").value(up);
      w.key("self").value(self);
      if (etcd) {
        w.key("registered").value(registered);
        w.key("draining").value(drained.count(id) > 0);
      }
      w.key("shards").value(
          static_cast<uint64_t>(map_known ? map.count_of(id) : 0));
      if (repl)
        w.key("follower_shards")
            .value(static_cast<uint64_t>(map_known ? roles_held[id].followers
                                                   : 0));
      w.end_object();
    };
    one(cfg.node_id,
        cfg.listen_host.empty()
            ? std::string{}
            : cfg.listen_host + ":" + std::to_string(cfg.listen_port),
        http_url, true, true);
    for (auto& [id, p] : peers)
      one(id, p.m.host + ":" + std::to_string(p.m.port), p.http_url,
          static_cast<bool>(p.handle), false);
    // Owners in the map whose registration ended: their shards wait for
    // them (503 meanwhile), and the operator sees whose they are.
    if (etcd && map_known)
      for (auto& id : map.members())
        if (id != cfg.node_id && peers.count(id) == 0)
          one(id, {}, {}, false, false, false);
    w.end_array();
    w.end_object();
    return w.take();
  }

  /// Per node (every member, and any other node the map names), how many
  /// shards it is the primary and a follower of in the map this node took
  /// last (t15-balance). Under mtx.
  struct role_counts {
    uint64_t primaries = 0;
    uint64_t followers = 0;
  };
  std::map<std::string, role_counts> roles_by_node() const {
    std::map<std::string, role_counts> out;
    if (!map_known)
      return out;
    // Members with no role show as 0 (a drained node that gave all away).
    out[cfg.node_id];
    for (auto& [id, p] : peers)
      out[id];
    for (uint32_t s = 0; s < map.shard_count(); ++s)
      ++out[map.owner(s)].primaries;
    if (repl)
      for (auto& f : repl->roles().followers)
        for (auto& id : f)
          ++out[id].followers;
    return out;
  }

  std::string shards() const {
    json::writer w;
    std::lock_guard<std::mutex> guard{mtx};
    w.begin_object();
    w.key("shard_count").value(static_cast<uint64_t>(map.shard_count()));
    w.key("nodes").begin_object();
    for (auto& [id, n] : roles_by_node()) {
      w.key(id).begin_object();
      w.key("primaries").value(n.primaries);
      w.key("followers").value(n.followers);
      w.end_object();
    }
    w.end_object();
    w.key("shards").begin_array();
    for (uint32_t s = 0; s < map.shard_count(); ++s) {
      w.begin_object();
      w.key("shard").value(static_cast<uint64_t>(s));
      w.key("node").value(map.owner(s));
      w.key("moved").value(map.moved(s));
      if (moving.count(s))
        w.key("moving").value(true);
      if (repl && map_known)
        repl->describe_shard(w, s);
      w.end_object();
    }
    w.end_array();
    w.end_object();
    return w.take();
  }
};

// -- the endpoint actor
// ---------------------------------------------------------------

namespace {

struct endpoint_state {
  /// Tickets name forwarded requests waiting for this node's answer. The
  /// answer reaches the endpoint as a message, so a ticket must not be
  /// guessable by whoever else can send one.
  std::mt19937_64 tickets{std::random_device{}()};
  std::unordered_map<uint64_t, caf::response_promise> pending;
};

/// The member that sent the message being handled ("" for anyone else).
std::string sender_of(caf::stateful_actor<endpoint_state>* self,
                      const node::impl& s) {
  auto& from = self->current_sender();
  return from ? s.member_of(from->node()) : std::string{};
}

/// Reads, commands and forwarded requests come only from a connected
/// member: a certificate of the cluster CA that belongs to no member (or a
/// member not yet through its hello) is refused too.
caf::error unless_member(caf::stateful_actor<endpoint_state>* self,
                         const node::impl& s, const char* what) {
  if (!sender_of(self, s).empty())
    return caf::none;
  log::warn(std::string{"cluster: refused "} + what
            + " from a sender that is not a connected member");
  return make_crm_error(crm_errc::forbidden, "forbidden",
                        "only members of the cluster may send this");
}

caf::behavior endpoint_actor(caf::stateful_actor<endpoint_state>* self,
                             std::shared_ptr<node::impl> node) {
  std::weak_ptr<node::impl> weak = node;
  self->set_exit_handler([=](caf::exit_msg& m) {
    auto s = weak.lock();
    if (!s || s->closing)
      self->quit(std::move(m.reason));
  });
  return {
      [=](forward_atom, http_forward& f) {
        // Checked before the promise: making it takes the sender away.
        auto s = weak.lock();
        auto refusal = s ? unless_member(self, *s, "a forwarded request")
                         : caf::make_error(caf::sec::request_receiver_down);
        auto rp = self->make_response_promise();
        if (refusal) {
          rp.deliver(std::move(refusal));
          return rp;
        }
        uint64_t ticket = 0;
        do
          ticket = self->state.tickets();
        while (self->state.pending.count(ticket) > 0);
        self->state.pending.emplace(ticket, rp);
        s->serve_forwarded(f, caf::actor_cast<caf::actor>(self), ticket);
        return rp;
      },
      [=](forward_atom, uint64_t ticket, http_answer& a) {
        auto i = self->state.pending.find(ticket);
        if (i == self->state.pending.end())
          return;
        i->second.deliver(std::move(a));
        self->state.pending.erase(i);
      },
      [=](read_atom, key_read& kr) -> caf::result<key_value> {
        key_value out;
        auto s = weak.lock();
        if (!s || kr.column >= storage::column_count)
          return out;
        if (auto err = unless_member(self, *s, "a read"))
          return err;
        out.found = s->read_here(static_cast<storage::column>(kr.column),
                                 kr.key, out.value, kr.take)
                    == http::cluster_hooks::read_outcome::found;
        if (!out.found)
          out.value.clear();
        return out;
      },
      [=](read_atom, key_reads& kr) -> caf::result<key_values> {
        key_values out;
        auto s = weak.lock();
        if (!s || kr.column >= storage::column_count)
          return out;
        if (auto err = unless_member(self, *s, "a read"))
          return err;
        out.values.resize(kr.keys.size());
        for (size_t i = 0; i < kr.keys.size(); ++i) {
          auto& v = out.values[i];
          v.found = s->read_here(static_cast<storage::column>(kr.column),
                                 kr.keys[i], v.value, false)
                    == http::cluster_hooks::read_outcome::found;
          if (!v.found)
            v.value.clear();
        }
        return out;
      },
      [=](route_atom, entity_key& key, caf::message& msg) {
        // Checked before the promise: making it takes the sender away.
        auto s = weak.lock();
        auto refusal = s ? unless_member(self, *s, "a command")
                         : caf::make_error(caf::sec::request_receiver_down);
        auto rp = self->make_response_promise();
        if (refusal)
          rp.deliver(std::move(refusal));
        else
          rp.delegate(s->directory, route_atom_v, key, std::move(msg));
        return rp;
      },
      [=](rows_atom, shard_rows& part) -> bool {
        auto s = weak.lock();
        return s && s->store_rows(sender_of(self, *s), part);
      },
      [=](moved_atom, shard_moved& m) -> bool {
        auto s = weak.lock();
        if (!s)
          return false;
        return s->told_moved(sender_of(self, *s), m);
      },
      [=](moved_atom, shard_moves& theirs) -> shard_moves {
        auto s = weak.lock();
        if (!s)
          return {};
        auto sender = sender_of(self, *s);
        if (sender.empty())
          return {};
        s->apply_known_moves(sender, theirs);
        return s->known_moves();
      },
      // Replicated shards (ADR 0008): batches, snapshot parts and status
      // questions from the members that are primaries. t15-repl.
      [=](replicate_atom, repl_push& p) -> caf::result<repl_results> {
        auto s = weak.lock();
        if (!s || !s->repl)
          return repl_results{};
        if (auto err = unless_member(self, *s, "replicated writes"))
          return err;
        return s->repl->apply_push(sender_of(self, *s), p);
      },
      [=](replicate_atom, repl_snapshot& p) -> caf::result<repl_result> {
        auto s = weak.lock();
        if (!s || !s->repl)
          return repl_result{p.shard, repl_result::refused, 0, 0};
        if (auto err = unless_member(self, *s, "a shard snapshot"))
          return err;
        return s->repl->apply_snapshot(sender_of(self, *s), p);
      },
      [=](replicate_atom, repl_status_ask& a) -> caf::result<repl_results> {
        auto s = weak.lock();
        if (!s || !s->repl)
          return repl_results{};
        if (auto err = unless_member(self, *s, "a replication status"))
          return err;
        return s->repl->status(a);
      },
      [=](hello_atom,
          const std::string&) -> std::tuple<std::string, std::string> {
        auto s = weak.lock();
        if (!s)
          return {};
        return {s->cfg.node_id, s->http_url};
      },
      [=](hello_atom, const std::string& id, const std::string& url,
          const caf::actor& their_endpoint)
          -> std::tuple<std::string, std::string> {
        auto s = weak.lock();
        if (!s)
          return {};
        auto& from = self->current_sender();
        if (!from || !s->accept_hello(id, url, their_endpoint, from->node()))
          return {}; // not taken: the dialling member tries again
        return {s->cfg.node_id, s->http_url};
      },
  };
}

} // namespace

// -- node
// -------------------------------------------------------------------------------

node::node(caf::actor_system& sys, config cfg, storage::db& db,
           caf::actor directory)
    : cfg_(cfg)
    , impl_(std::make_shared<impl>(sys, std::move(cfg), db,
                                   std::move(directory))) {}

node::~node() {
  stop();
}

bool node::start(http::handler local, std::string& err) {
  impl_->local = std::move(local);
  if (!impl_->clustered())
    return true;
  if (impl_->etcd) {
    // Uniqueness is decided in etcd from now on (ADR 0007).
    impl_->db.set_global_claims(std::make_shared<etcd_claims>(
        impl_->etcd, impl_->membership->prefix()));
    // Committed writes go to the shards' followers (ADR 0008).
    storage::set_write_hook(impl_->db, impl_->repl);
  } else
    impl_->load_moves();
  {
    std::lock_guard<std::mutex> guard{impl_->served_mtx};
    impl_->served = std::make_unique<work_pool>(2, "cluster-served");
  }
  // Detached: a follower applies replicated batches here (RocksDB writes
  // off the scheduler). t15-repl. No scheduler thread waits for the
  // acknowledgement any more (t15-ack), so this is not what keeps
  // replication going.
  impl_->endpoint = impl_->sys.spawn<caf::detached>(endpoint_actor, impl_);
  auto bound = caf::openssl::publish(impl_->endpoint, cfg_.listen_port,
                                     cfg_.listen_host.c_str(), true);
  if (!bound) {
    err = "cluster: cannot listen on " + cfg_.listen_host + ":"
          + std::to_string(cfg_.listen_port) + ": "
          + impl_->sys.render(bound.error());
    impl_->closing = true;
    caf::anon_send_exit(impl_->endpoint, caf::exit_reason::user_shutdown);
    impl_->endpoint = nullptr;
    return false;
  }
  bound_port_ = *bound;
  // What the others are told in etcd (the port may have been 0).
  impl_->cfg.listen_port = bound_port_;
  impl_->connector = std::thread([s = impl_] { s->connect_loop(); });
  if (impl_->upkeep)
    impl_->upkeeper = std::thread([s = impl_] {
      s->upkeep->run([&](std::chrono::milliseconds pause) {
        std::unique_lock<std::mutex> lk{s->stop_mtx};
        return s->stop_cv.wait_for(lk, pause, [&] { return s->stopping; });
      });
    });
  if (impl_->etcd)
    impl_->coordinator = std::thread([s = impl_] {
      s->membership->run(
          s->cfg.listen_host + ":" + std::to_string(s->cfg.listen_port),
          s->http_url, s->cfg.etcd_poll, [&](std::chrono::milliseconds poll) {
            std::unique_lock<std::mutex> lk{s->stop_mtx};
            return s->stop_cv.wait_for(lk, poll, [&] { return s->stopping; });
          });
    });
  return true;
}

void node::set_sync(std::function<bool(tenant_id)> busy,
                    std::function<void(tenant_id)> adopt) {
  impl_->sync_busy = std::move(busy);
  impl_->adopt = std::move(adopt);
}

std::function<bool(tenant_id)> node::serves() const {
  auto s = impl_;
  if (!s->clustered())
    return {};
  return [s](tenant_id t) {
    return s->serves(t);
  };
}

void node::set_io(std::function<void(std::function<void()>)> post) {
  impl_->io_post = std::move(post);
}

void node::set_http_url(std::string url) {
  impl_->http_url = std::move(url);
}

void node::set_local_reader(
    std::function<http::cluster_hooks::read_outcome(
        storage::column, const std::string&, std::string&, bool)>
        read) {
  // With replicated shards a follower holds copies of other nodes' rows:
  // only the owner answers for them (a follower's copy may lag behind).
  // The reader given here is the API's local read, which leaves such
  // copies to their owner (hooks().copy_only) before it takes anything.
  impl_->read_here = std::move(read);
}

void node::stop() {
  {
    std::lock_guard<std::mutex> lk{impl_->stop_mtx};
    impl_->stopping = true;
  }
  impl_->stop_cv.notify_all();
  if (impl_->connector.joinable())
    impl_->connector.join();
  if (impl_->upkeeper.joinable())
    impl_->upkeeper.join();
  if (impl_->coordinator.joinable())
    impl_->coordinator.join();
  if (impl_->repl) {
    storage::set_write_hook(impl_->db, nullptr);
    impl_->repl->stop();
  }
  // Forwarded requests in the queue still run (their answers go out).
  std::unique_ptr<work_pool> served;
  {
    std::lock_guard<std::mutex> guard{impl_->served_mtx};
    served = std::move(impl_->served);
  }
  served.reset();
  {
    std::lock_guard<std::mutex> guard{impl_->movers_mtx};
    for (auto& t : impl_->movers)
      if (t.joinable())
        t.join();
    impl_->movers.clear();
  }
  std::vector<caf::actor> to_stop;
  {
    std::lock_guard<std::mutex> guard{impl_->mtx};
    for (auto& [id, p] : impl_->peers) {
      if (p.watcher)
        to_stop.push_back(p.watcher);
      p.watcher = nullptr;
      p.handle = nullptr;
    }
    if (impl_->endpoint)
      to_stop.push_back(impl_->endpoint);
    impl_->endpoint = nullptr;
    impl_->closing = true;
  }
  for (auto& a : to_stop)
    caf::anon_send_exit(a, caf::exit_reason::user_shutdown);
}

void node::handle(http::request&& req, http::responder_ptr r) {
  impl_->handle(std::move(req), std::move(r));
}

http::cluster_hooks node::hooks() {
  http::cluster_hooks h;
  auto s = impl_;
  h.describe = [s] {
    return s->describe();
  };
  h.placement = [s](tenant_id t) {
    if (!s->map_known)
      return std::make_pair(uint32_t{0}, std::string{});
    std::lock_guard<std::mutex> guard{s->mtx};
    auto shard = shard_of(t, s->map.shard_count());
    return std::make_pair(shard, s->map.owner(shard));
  };
  h.shards = [s] {
    return s->shards();
  };
  if (!s->clustered())
    return h;
  h.directory_for = [s](tenant_id t) -> caf::expected<caf::actor> {
    if (!s->map_known)
      return make_crm_error(crm_errc::unavailable, "node_unavailable",
                            "this node has not read the cluster's shard map "
                            "from etcd yet; retry");
    auto o = s->owner(t);
    if (o == s->cfg.node_id) {
      if (s->is_moving(t))
        return make_crm_error(crm_errc::unavailable, "node_unavailable",
                              "this organization is moving between nodes; "
                              "retry");
      return s->directory;
    }
    if (auto p = s->peer(o))
      return p;
    return make_crm_error(crm_errc::unavailable, "node_unavailable",
                          "node " + o
                              + ", which owns this organization, is "
                                "unreachable; retry");
  };
  h.move_shard = [s](uint32_t shard, std::string to,
                     std::function<void(caf::expected<std::string>)> done) {
    std::lock_guard<std::mutex> guard{s->movers_mtx};
    s->movers.emplace_back([s, shard, to, done] {
      ::pthread_setname_np(::pthread_self(), "shard-move");
      auto res = s->move(shard, to);
      if (res.error)
        return done(std::move(res.error));
      // Rebalancing leaves a shard moved by hand where it was put.
      if (s->upkeep)
        s->upkeep->pin(shard, to);
      json::writer w;
      w.begin_object();
      w.key("shard").value(static_cast<uint64_t>(shard));
      w.key("from").value(res.from);
      w.key("to").value(to);
      w.key("state").value("done");
      w.key("tenants").value(static_cast<uint64_t>(res.tenants));
      w.key("rows").value(static_cast<uint64_t>(res.rows));
      w.end_object();
      done(w.take());
    });
  };
  if (s->upkeep)
    h.drain = [s](std::string id, http::cluster_hooks::drain_action action,
                  std::function<void(caf::expected<std::string>)> done) {
      // etcd is asked off the I/O thread.
      std::lock_guard<std::mutex> guard{s->movers_mtx};
      s->movers.emplace_back(
          [s, id, action, done] { done(s->drain(id, action)); });
    };
  h.view_ready = [s] {
    return s->ready();
  };
  if (s->repl)
    h.copy_only
        = [s](storage::column c, std::string_view key, std::string_view value) {
            if (!replicated_column(c) || !s->map_known)
              return false;
            auto t = storage::row_tenant(c, key, value);
            return t && s->owner(*t) != s->cfg.node_id;
          };
  h.read = [s](storage::column c, const std::string& key, std::string& value,
               bool take) {
    return s->read_remote(c, key, value, take);
  };
  h.read_async = [s](storage::column c, std::vector<std::string> keys,
                     bool take, http::cluster_hooks::read_done done) {
    s->read_remote_async(c, std::move(keys), take, std::move(done));
  };
  return h;
}

} // namespace crmsync::cluster
