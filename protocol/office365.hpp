// Office 365 records and the tenant actor's commands for installing,
// signing in, inviting, joining and approving (R1-R12).
//
// Plain value types: storage owns their on-disk codec, api/ their JSON.
// An Office 365 person is named by (tenant id, object id) as the
// identity platform's id_token says (tid, oid). Times are UTC ms.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <caf/meta/type_name.hpp>

#include "protocol/messages.hpp"
#include "protocol/records.hpp"

namespace crmsync {

/// Who signed in with Office 365 (verified id_token claims).
struct o365_identity {
  std::string tenant; ///< tid
  std::string user;   ///< oid
  std::string email;  ///< preferred_username, lower-cased (never `email`)
  std::string name;
  bool is_admin = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, o365_identity& x) {
  return f(caf::meta::type_name("crmsync::o365_identity"), x.tenant, x.user,
           x.email, x.name, x.is_admin);
}

enum class invite_status : uint8_t {
  pending = 0,
  accepted = 1,   ///< the invitee joined this organization (R8)
  associated = 2, ///< the invitee went to their existing account (R9)
  superseded = 3, ///< a newer invite for the same person replaced it
  revoked = 4,    ///< a user manager took it back
  /// Never stored: how a pending invitation past its expiry is listed.
  expired = 5,
};

enum class join_status : uint8_t { pending = 0, approved = 1, rejected = 2 };

const char* to_string(invite_status x);

/// The random bytes of an invitation token; the link carries them as
/// unpadded base64url (crypto::random_token), 43 characters.
constexpr size_t invite_token_bytes = 32;

/// Whether `token` has the shape of the invitation tokens this service
/// issues (anything else is refused before any work is done for it).
bool is_invite_token(std::string_view token);
const char* to_string(join_status x);

/// The page a join request's approvers open from their e-mail (GET,
/// `{public_url}/join-requests/{org}/{id}`), with "Approve & Add" on it.
std::string join_request_page(std::string_view public_url, tenant_id org,
                              uint64_t request);

struct invite_record {
  uint64_t id = 0;
  tenant_id org;
  std::string o365_user; ///< the invitee's object id
  std::string email;
  std::string name;
  user_id inviter;
  std::string token_hash; ///< SHA-256 hex of the single-use token
  invite_status status = invite_status::pending;
  user_id member; ///< the CRM user it led to (accepted or associated)
  int64_t created_ms = 0;
  int64_t expires_ms = 0;
  int64_t resolved_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, invite_record& x) {
  return f(caf::meta::type_name("crmsync::invite_record"), x.id, x.org,
           x.o365_user, x.email, x.name, x.inviter, x.token_hash, x.status,
           x.member, x.created_ms, x.expires_ms, x.resolved_ms);
}

struct join_request_record {
  uint64_t id = 0;
  tenant_id org;
  std::string o365_user;
  std::string email;
  std::string name;
  join_status status = join_status::pending;
  user_id approved_by;
  user_id member; ///< the CRM user made on approval
  int64_t created_ms = 0;
  int64_t resolved_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_request_record& x) {
  return f(caf::meta::type_name("crmsync::join_request_record"), x.id, x.org,
           x.o365_user, x.email, x.name, x.status, x.approved_by, x.member,
           x.created_ms, x.resolved_ms);
}

/// One line of a tenant's audit log.
struct audit_entry {
  tenant_id org;
  int64_t at_ms = 0;
  uint64_t seq = 0;   ///< orders entries of the same millisecond
  std::string actor;  ///< "user:ID", "office365:EMAIL" or "service-admin"
  std::string action; ///< e.g. "install", "invite.sent", "join.approved"
  std::string detail;
  /// The HTTP request that caused it (X-Request-Id), "" when none did or
  /// it was written before request ids existed.
  std::string request_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_entry& x) {
  return f(caf::meta::type_name("crmsync::audit_entry"), x.org, x.at_ms, x.seq,
           x.actor, x.action, x.detail, x.request_id);
}

/// An e-mail waiting in a tenant's outbox to go out through Graph sendMail.
struct mail_item {
  uint64_t id = 0;
  tenant_id org;
  std::string o365_tenant;
  std::string sender; ///< the object id of the mailbox that sends it
  std::string to;
  std::string subject;
  std::string html;
  uint32_t attempts = 0;
  std::string last_error;
  bool failed = false; ///< gave up; kept for operators to see
  int64_t created_ms = 0;
  int64_t next_attempt_ms = 0; ///< not sent again before (backoff)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, mail_item& x) {
  return f(caf::meta::type_name("crmsync::mail_item"), x.id, x.org,
           x.o365_tenant, x.sender, x.to, x.subject, x.html, x.attempts,
           x.last_error, x.failed, x.created_ms, x.next_attempt_ms);
}

/// A sign-in in progress: the single-use OAuth `state` stands for it.
struct signin_state_record {
  std::string purpose; ///< "install" or "signin"
  std::string nonce;
  std::string o365_tenant; ///< after sign-in, while admin consent runs
  o365_identity who;       ///< likewise
  int64_t expires_ms = 0;
  std::string invite_token; ///< the invite link that started the sign-in
  /// SHA-256 (hex) of the sign-in cookie of the browser that started the
  /// flow: only that browser can finish it ("" in records written before
  /// the binding existed, which therefore cannot finish).
  std::string browser;
};

/// What an office365_session token stands for: a verified Office 365
/// person who is not (yet) a CRM user.
struct o365_session_record {
  o365_identity who;
  int64_t expires_ms = 0;
};

// -- commands to the tenant actor ---------------------------------------------

/// Install, sign-in or "associate my account": links an Office 365 person
/// to an existing user of this organization and adds a new API token hash
/// for them. `install` also links the organization to the person's Office
/// 365 tenant (the admin's account already existed, R2).
struct link_office365 {
  o365_identity who;
  user_id user;
  std::string token_hash;
  /// "install", "install_by_email" (the account has the admin's e-mail),
  /// "signin", "signin_by_email" (a user of an organization linked to the
  /// person's tenant whose address is the person's sign-in name) or
  /// "associate"
  std::string action;
  /// The token is a browser page session's (bounded apart from programs').
  bool page = false;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, link_office365& x) {
  return f(caf::meta::type_name("crmsync::link_office365"), x.who, x.user,
           x.token_hash, x.action, x.page);
}

/// A page session ended (sign-out): its token is no longer the user's,
/// and its row (`session_key`, keys::page_session) goes on the shard's
/// primary, replicated like the token's removal. Answers whether the user
/// held the token.
struct revoke_page_token {
  user_id user;
  std::string token_hash;
  std::string session_key;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, revoke_page_token& x) {
  return f(caf::meta::type_name("crmsync::revoke_page_token"), x.user,
           x.token_hash, x.session_key);
}

/// A CRM user's browser page session, stored by the organization's tenant
/// actor on the shard's primary so that it is replicated with the shard
/// (t15-sessions): `key` is keys::page_session of the cookie's hash,
/// `value` the session (keys::page_session_value, naming this organization
/// and `user`). Answers true once stored.
struct open_page_session {
  user_id user;
  std::string key;
  std::string value;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, open_page_session& x) {
  return f(caf::meta::type_name("crmsync::open_page_session"), x.user, x.key,
           x.value);
}

struct invitee {
  std::string o365_user;
  std::string email;
  std::string name;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, invitee& x) {
  return f(caf::meta::type_name("crmsync::invitee"), x.o365_user, x.email,
           x.name);
}

/// R6-R7: invites Office 365 users (already looked up in Graph). The
/// tenant mints each token, stores the invite and queues its e-mail with
/// the link `public_url`/invite/TOKEN, all in one write.
struct invite_users {
  caller who;
  std::vector<invitee> invitees;
  std::string public_url;
  int64_t lifetime_ms = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, invite_users& x) {
  return f(caf::meta::type_name("crmsync::invite_users"), x.who, x.invitees,
           x.public_url, x.lifetime_ms);
}

struct invite_list {
  std::vector<invite_record> items;
  /// Invitees who already are CRM users: no invite, no e-mail.
  std::vector<invitee> already_members;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, invite_list& x) {
  return f(caf::meta::type_name("crmsync::invite_list"), x.items,
           x.already_members);
}

struct list_invites {
  caller who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_invites& x) {
  return f(caf::meta::type_name("crmsync::list_invites"), x.who);
}

/// The open (pending, unexpired) invitations of one Office 365 person:
/// what an invitee who opens the app instead of the e-mail can accept.
struct list_my_invites {
  o365_identity who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_my_invites& x) {
  return f(caf::meta::type_name("crmsync::list_my_invites"), x.who);
}

/// R8/R9: the invitee accepts. Without `associated` the invitee becomes a
/// user (`member` carries the new user's id and token hash); with it, the
/// invitee already proved an account elsewhere and the invite is closed
/// as associated. The invitation is named by its link's token hash, or,
/// when that is empty, by its id (an invitee who signed in through the app
/// and never opened the e-mail; the session proves who they are).
struct accept_invite {
  std::string token_hash;
  o365_identity who;
  new_user member;
  bool associated = false;
  user_id associated_user;
  uint64_t invite = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, accept_invite& x) {
  return f(caf::meta::type_name("crmsync::accept_invite"), x.token_hash, x.who,
           x.member, x.associated, x.associated_user, x.invite);
}

struct invite_accepted {
  invite_record invite;
  user_record member; ///< empty id when associated
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, invite_accepted& x) {
  return f(caf::meta::type_name("crmsync::invite_accepted"), x.invite,
           x.member);
}

/// R10-R11: an Office 365 person of the linked tenant asks to join; the
/// request is e-mailed to every user with Manage Users. Asking again while
/// a request is pending answers that request.
struct request_join {
  o365_identity who;
  std::string public_url;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, request_join& x) {
  return f(caf::meta::type_name("crmsync::request_join"), x.who, x.public_url);
}

/// The requester's own request, if any (status for the person waiting).
struct get_join_request {
  o365_identity who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, get_join_request& x) {
  return f(caf::meta::type_name("crmsync::get_join_request"), x.who);
}

struct list_join_requests {
  caller who;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_join_requests& x) {
  return f(caf::meta::type_name("crmsync::list_join_requests"), x.who);
}

struct join_request_list {
  std::vector<join_request_record> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_request_list& x) {
  return f(caf::meta::type_name("crmsync::join_request_list"), x.items);
}

/// R12: "Approve & Add". Approving an approved request answers its user.
struct approve_join {
  caller who;
  uint64_t request = 0;
  new_user member;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, approve_join& x) {
  return f(caf::meta::type_name("crmsync::approve_join"), x.who, x.request,
           x.member);
}

struct join_approved {
  join_request_record request;
  user_record member;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, join_approved& x) {
  return f(caf::meta::type_name("crmsync::join_approved"), x.request, x.member);
}

/// An entry for the audit log about something refused outside the tenant
/// actor (an Office 365 user who is not an admin trying to install).
struct audit_note {
  std::string actor;
  std::string action;
  std::string detail;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_note& x) {
  return f(caf::meta::type_name("crmsync::audit_note"), x.actor, x.action,
           x.detail);
}

struct list_audit {
  caller who;
  uint32_t limit = 100;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, list_audit& x) {
  return f(caf::meta::type_name("crmsync::list_audit"), x.who, x.limit);
}

struct audit_list {
  std::vector<audit_entry> items;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, audit_list& x) {
  return f(caf::meta::type_name("crmsync::audit_list"), x.items);
}

} // namespace crmsync
