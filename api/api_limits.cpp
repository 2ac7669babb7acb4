// The API's side of the limits on unauthenticated work (throttles.hpp):
// the answers (429 with Retry-After), the refusal metrics and the audit
// entry for an account under password guessing.
#include "api/api_impl.hpp"

#include "common/metrics.hpp"

namespace crmsync::http {

bool api::impl::admit_signin(const request& req, const responder_ptr& r) {
  auto wait = limits.signin_start(limits.client_of(req));
  if (wait.count() == 0)
    return true;
  metrics::node().refused(metrics::refusal::signin_rate);
  r->reply(too_many_requests(wait, "too many sign-ins were started from this "
                                   "address; retry later"));
  return false;
}

bool api::impl::admit_password(const request& req, const std::string& account,
                               const responder_ptr& r) {
  auto wait = limits.password_wait(limits.client_of(req), account);
  if (wait.count() == 0)
    return true;
  metrics::node().refused(metrics::refusal::password_backoff);
  r->reply(too_many_requests(wait, "too many wrong passwords for this "
                                   "account or from this address; retry "
                                   "later"));
  return false;
}

void api::impl::password_failed(const std::string& client,
                                const std::string& account, tenant_id org,
                                const std::string& actor) {
  auto failures = limits.password_failed(client, account);
  if (!limits.backing_off(failures) || !org.valid())
    return;
  // One entry per wrong password once the account backs off: the backoff
  // itself bounds how many there can be.
  auto wait = limits.account_wait_after(failures);
  ask<bool>(
      tenant_key(org),
      audit_note{actor, "password.failures",
                 std::to_string(failures) + " wrong passwords in a row for "
                     + account + ", the last from " + client
                     + "; further attempts wait "
                     + std::to_string((wait.count() + 999) / 1000) + " s"},
      [](bool) {}, [](const caf::error&) {});
}

void api::impl::password_ok(const std::string& account) {
  limits.password_ok(account);
}

void api::impl::refuse_hash_share(const responder_ptr& r) {
  metrics::node().refused(metrics::refusal::hash_share);
  r->reply(too_many_requests(std::chrono::seconds(1),
                             "too many of your password checks are in "
                             "progress; retry"));
}

} // namespace crmsync::http
