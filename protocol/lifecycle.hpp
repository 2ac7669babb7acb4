// Messages of the rest of a user's lifecycle (issue 14): deleting a
// deactivated user with their data, the caller's own API tokens, revoking
// an invitation and rejecting a join request.
//
// Plain values with inspect(), registered in protocol/type_ids.hpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "protocol/messages.hpp"
#include "protocol/office365.hpp"

namespace crmsync {

/// Removes a deactivated user and every row of theirs; never the super
/// administrator or the last administrator.
struct delete_user {
  caller who;
  user_id id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, delete_user& x) {
  return f(caf::meta::type_name("crmsync::delete_user"), x.who, x.id);
}

struct user_deleted {
  user_record user; ///< as it was
  uint64_t events = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, user_deleted& x) {
  return f(caf::meta::type_name("crmsync::user_deleted"), x.user, x.events);
}

/// One of the caller's tokens as listed: never its secret or hash.
struct token_info {
  std::string id;   ///< token_id of its hash
  std::string name; ///< "" for sign-in and account tokens
  std::string kind; ///< "api" (made), "signin", "account" (made with the user)
  int64_t created_ms = 0; ///< 0 when not known (account tokens)
  int64_t expires_ms = 0; ///< 0 = never
  bool current = false;   ///< the token of this request
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_info& x) {
  return f(caf::meta::type_name("crmsync::token_info"), x.id, x.name, x.kind,
           x.created_ms, x.expires_ms, x.current);
}

struct token_list {
  std::vector<token_info> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_list& x) {
  return f(caf::meta::type_name("crmsync::token_list"), x.items);
}

struct list_tokens {
  caller who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_tokens& x) {
  return f(caf::meta::type_name("crmsync::list_tokens"), x.who);
}

/// Stores a token the caller made (the API made its secret; only the hash
/// comes here).
struct create_token {
  caller who;
  api_token token;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, create_token& x) {
  return f(caf::meta::type_name("crmsync::create_token"), x.who, x.token);
}

/// Revokes one of the caller's own tokens, by id.
struct revoke_token {
  caller who;
  std::string id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revoke_token& x) {
  return f(caf::meta::type_name("crmsync::revoke_token"), x.who, x.id);
}

/// Takes back a pending invitation (Manage Users): its link then says it
/// was revoked.
struct revoke_invite {
  caller who;
  uint64_t invite = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revoke_invite& x) {
  return f(caf::meta::type_name("crmsync::revoke_invite"), x.who, x.invite);
}

/// Rejects a pending join request (Manage Users); the requester is told
/// by e-mail.
struct reject_join {
  caller who;
  uint64_t request = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, reject_join& x) {
  return f(caf::meta::type_name("crmsync::reject_join"), x.who, x.request);
}

/// From the sync: the user's Office 365 mailbox is gone or disabled (the
/// person left or was blocked). The CRM user is deactivated with `reason`
/// in the audit log (actor "sync") and the administrators are e-mailed,
/// once: an already deactivated user is left as it is.
struct offboard_user {
  user_id user;
  std::string reason;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, offboard_user& x) {
  return f(caf::meta::type_name("crmsync::offboard_user"), x.user, x.reason);
}

/// Sets the password of the user whose password-setup token hashes to
/// `token_hash` (single use, until it expires). With `check_only` nothing
/// changes: the answer says whether the link still works (its page).
/// `signin_token_hash`, when set, is a token the person is signed in with
/// once the password is set (a sign-in token: it ends after
/// --session-ttl).
struct set_password {
  user_id user;
  std::string token_hash;
  std::string password_hash; ///< Argon2id
  bool check_only = false;
  std::string signin_token_hash;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, set_password& x) {
  return f(caf::meta::type_name("crmsync::set_password"), x.user, x.token_hash,
           x.password_hash, x.check_only, x.signin_token_hash);
}

} // namespace crmsync
