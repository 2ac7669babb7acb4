// The tenant actor's state, and the helpers its handler files share.
//
// Private to actors/tenant/. The tenant actor is the single writer of its
// tenant's keys in the orgs, users, events and event_index families; its
// handlers (handlers.hpp, one file per concern) and these helpers run only
// inside the actor, on its state. Helpers that build a change add it to the
// caller's WriteBatch; the handler writes the batch before it answers.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include <caf/actor.hpp>
#include <caf/error.hpp>
#include <caf/expected.hpp>
#include <caf/stateful_actor.hpp>
#include <caf/typed_event_based_actor.hpp>

#include "actors/env.hpp"
#include "common/log.hpp"
#include "protocol/interfaces.hpp"
#include "protocol/permissions.hpp"
#include "storage/codec.hpp"
#include "storage/keys.hpp"

namespace crmsync::actors {

struct tenant_state {
  static inline const char* name = "tenant";
  tenant_id id;
  std::shared_ptr<const actor_env> env;
  caf::actor directory;
  bool exists = false;
  /// Closed for deletion (keys::org_closed): answers as if it did not exist.
  bool closed = false;
  bool asked_to_go = false;
  org_record org;
  std::unordered_map<user_id, user_record> users;
  /// Whether each user asked for calendar sync (this actor writes the
  /// requests, so the cache never goes stale).
  std::unordered_map<user_id, bool> sync_on;
  uint64_t last_sync_seq = 0;
  /// Outbox keys put_mail wrote since the last mail_written.
  std::vector<std::string> mail_keys;
};

namespace tenant_impl {

namespace keys = storage::keys;
namespace codec = storage::codec;
using storage::column;
using self_ptr = tenant_actor::stateful_pointer<tenant_state>;

// -- errors.cpp: the answers a handler gives when it refuses

caf::error not_found(std::string what);
caf::error forbidden(std::string message);
caf::error invalid(std::string field, std::string message);
caf::error corrupt(const std::string& what);
caf::error check_version(uint64_t expected, uint64_t actual);
caf::error office365_error(crm_errc code, std::string api_code,
                           std::string message);

// -- access.cpp: who is calling

void leave_if_empty(self_ptr self);

/// check_caller's answer: the caller's user (nullptr for the service
/// admin) or why not, used like the caf::expected it holds. While it lives
/// (the handler's run), the thread's log lines and the audit entries the
/// handler writes carry the request id the caller brought, the
/// organization and the user (log::scope).
class checked_caller {
public:
  checked_caller(caf::expected<const user_record*> result,
                 const log::context& ctx)
      : result_(std::move(result)), scope_(ctx) {}
  checked_caller(const checked_caller&) = delete;
  checked_caller& operator=(const checked_caller&) = delete;

  explicit operator bool() const {
    return static_cast<bool>(result_);
  }
  const user_record* operator*() const {
    return *result_;
  }
  const caf::error& error() const {
    return result_.error();
  }

private:
  caf::expected<const user_record*> result_;
  log::scope scope_;
};

checked_caller check_caller(self_ptr self, const caller& who);

/// What the tenant's log lines and audit entries say of a command from
/// `who`: its request id, the organization, the user. For a handler that
/// checks its caller in a helper, a log::scope of its own keeps the id
/// over the whole handler.
log::context caller_context(self_ptr self, const caller& who);

// -- users.cpp

caf::expected<const user_record*> find_user(self_ptr self, user_id id);
caf::expected<const user_record*> require_user(self_ptr self, user_id id,
                                               std::string field = {});
user_record make_user(self_ptr self, const new_user& nu, int64_t now);

/// Sign-in tokens a user holds at once (of programs; page sessions' are
/// bounded apart): signing in on one device does not sign out another.
constexpr size_t max_signin_tokens = 5;
std::vector<storage::claim> user_claims(const user_record& u);
void put_user(storage::write_batch& b, const user_record& u);
caf::error claim_error(const caf::error& err, const user_record& u,
                       const char* email_field);

// -- org.cpp

void put_org(self_ptr self, storage::write_batch& b, const org_record& o);

// -- events.cpp

caf::expected<event_record> load_event(self_ptr self, event_id id);
event_id fresh_event_id(self_ptr self, caf::error& err);
void put_event(self_ptr self, storage::write_batch& b, const event_record& e);
void put_revision(self_ptr self, storage::write_batch& b,
                  const event_record& before, const event_record& after);

// -- sync.cpp

caf::expected<bool> queue_sync(self_ptr self, storage::write_batch& b,
                               const event_record& e, bool deleted);
caf::expected<bool> put_sync_off(self_ptr self, storage::write_batch& b,
                                 user_id u);
void put_sync_request(self_ptr self, storage::write_batch& b, user_id u,
                      bool enabled);
void sync_written(self_ptr self, user_id u);

// -- office365.cpp

/// Deletes, in `b`, every page session of user `u` this node holds (a
/// deactivated user's browsers are signed out with their tokens).
caf::error put_page_sessions_off(self_ptr self, storage::write_batch& b,
                                 user_id u);

// -- audit.cpp

std::string actor_name(const user_record* u);
std::string actor_name(const o365_identity& who);
void put_audit(self_ptr self, storage::write_batch& b, std::string actor,
               std::string action, std::string detail);
caf::error refused(self_ptr self, std::string actor, std::string action,
                   std::string detail, caf::error answer);

// -- mail.cpp

void put_mail(self_ptr self, storage::write_batch& b, std::string sender,
              std::string to, std::string subject, std::string html);
void mail_written(self_ptr self);
std::string mail_sender(self_ptr self, const user_record* who);
std::string html_text(std::string_view s);

// -- office365.cpp

storage::claim o365_user_claim(const user_record& u);
user_record make_o365_user(self_ptr self, const new_user& nu,
                           const std::string& o365_user, int64_t now);
caf::error add_o365_user(self_ptr self, storage::write_batch& b,
                         const user_record& u);

} // namespace tenant_impl

} // namespace crmsync::actors
