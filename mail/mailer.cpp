#include "mail/mailer.hpp"

#include <vector>

#include "common/clock.hpp"
#include "common/crypto.hpp"
#include "common/log.hpp"
#include "graph/client.hpp"
#include "protocol/json.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::mail {

namespace {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;

/// Graph's sendMail body for one HTML message to one recipient.
std::string send_mail_body(const mail_item& m) {
  json::writer w;
  w.begin_object().key("message").begin_object();
  w.key("subject").value(m.subject);
  w.key("body").begin_object();
  w.key("contentType").value("HTML");
  w.key("content").value(m.html);
  w.end_object();
  w.key("toRecipients").begin_array().begin_object();
  w.key("emailAddress").begin_object().key("address").value(m.to);
  w.end_object().end_object().end_array();
  w.end_object();
  w.key("saveToSentItems").value(true);
  w.end_object();
  return w.take();
}

/// Whether trying again later can help (throttling, outages, transport).
bool transient(const graph::error& e) {
  return e.status == 0 || e.status == 408 || e.status == 429 || e.status >= 500;
}

void put_audit(storage::write_batch& b, const mail_item& m, std::string action,
               std::string detail) {
  audit_entry a;
  a.org = m.org;
  a.at_ms = system_now_ms();
  a.seq = crypto::random_u64();
  a.actor = "mailer";
  a.action = std::move(action);
  a.detail = std::move(detail);
  b.put(column::audit, keys::audit(a.org, a.at_ms, a.seq), codec::encode(a));
}

} // namespace

mailer::mailer(storage::db& db, graph::client& graph, mailer_options opts)
    : db_(db), graph_(graph), opts_(opts), worker_([this] { run(); }) {}

mailer::~mailer() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void mailer::wake() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    woken_ = true;
  }
  cv_.notify_all();
}

mailer_stats mailer::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  return stats_;
}

void mailer::run() {
  // The first pass picks up whatever an earlier run left unsent.
  bool retry_pending = pass();
  for (;;) {
    {
      std::unique_lock<std::mutex> lock{mtx_};
      auto pause = retry_pending ? opts_.retry_delay : opts_.idle_poll;
      cv_.wait_for(lock, pause, [this] { return woken_ || stopping_; });
      if (stopping_)
        return;
      woken_ = false;
    }
    retry_pending = pass();
  }
}

void mailer::set_owner_check(std::function<bool(tenant_id)> serves) {
  std::lock_guard<std::mutex> guard{mtx_};
  serves_ = std::move(serves);
}

bool mailer::busy(tenant_id t) const {
  return sending_.load() == t.value;
}

bool mailer::pass() {
  std::vector<std::pair<std::string, mail_item>> due;
  auto now = system_now_ms();
  bool waiting = false;
  auto err = db_.scan(column::outbox, "", "",
                      [&](std::string_view k, std::string_view v) {
                        mail_item m;
                        if (!codec::decode(v, m)) {
                          log::error("mailer: undecodable outbox item");
                          return true;
                        }
                        // Failed rows stay for operators; rows backing off
                        // wait however often the mailer is woken.
                        if (!m.failed && m.next_attempt_ms <= now) {
                          due.emplace_back(std::string{k}, std::move(m));
                        } else if (!m.failed) {
                          waiting = true;
                        }
                        return true;
                      });
  if (err) {
    log::error("mailer: cannot read the outbox");
    return true;
  }
  bool retry_pending = waiting;
  for (auto& [key, m] : due) {
    std::function<bool(tenant_id)> serves;
    {
      std::lock_guard<std::mutex> guard{mtx_};
      if (stopping_)
        return false;
      serves = serves_;
    }
    // Marked busy before the ownership check: a shard move marks the
    // tenant moving before it waits for busy, so one of the two sees the
    // other.
    tenant_id tenant{keys::get_be64(key, 0)};
    sending_ = tenant.value;
    if (serves && !serves(tenant)) {
      sending_ = 0;
      continue;
    }
    graph::response res;
    graph::error gerr;
    storage::write_batch b;
    if (graph_.call(m.o365_tenant, m.sender, "POST",
                    "/users/" + m.sender + "/sendMail", send_mail_body(m), res,
                    gerr)) {
      b.del(column::outbox, key);
      put_audit(b, m, "mail.sent", "\"" + m.subject + "\" to " + m.to);
      if (auto werr = db_.write(b))
        log::error("mailer: sent, but cannot clear the outbox item");
      sending_ = 0;
      std::lock_guard<std::mutex> guard{mtx_};
      ++stats_.sent;
      continue;
    }
    ++m.attempts;
    m.last_error = gerr.describe();
    m.failed = !transient(gerr) || m.attempts >= opts_.max_attempts;
    // Doubling pauses between passes (the Graph client already waited out
    // any Retry-After it could within the call).
    auto pause = opts_.retry_delay.count()
                 << std::min<uint32_t>(m.attempts - 1, 6);
    m.next_attempt_ms = system_now_ms() + pause;
    b.put(column::outbox, key, codec::encode(m));
    if (m.failed)
      put_audit(b, m, "mail.failed",
                "\"" + m.subject + "\" to " + m.to
                    + " was not sent: " + m.last_error);
    if (auto werr = db_.write(b))
      log::error("mailer: cannot record a failed send");
    sending_ = 0;
    log::warn("mailer: sending to " + m.to + " failed: " + m.last_error);
    std::lock_guard<std::mutex> guard{mtx_};
    if (m.failed) {
      ++stats_.failed;
    } else {
      ++stats_.retried;
      retry_pending = true;
    }
  }
  return retry_pending;
}

} // namespace crmsync::mail
