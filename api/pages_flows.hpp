// The browser pages of the Office 365 flows (issue 14), with cookie
// sessions (api/sessions.hpp): the install's terms and "Associate my
// account", the invitation (/invite/{token}), the request to join and its
// status, and the approvers' page of a join request. The flows themselves
// (sign-in, consent, install, accepting an invitation) stay in
// office365_api.cpp; the pages reach them through flow_hooks.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "api/api.hpp"
#include "api/sessions.hpp"
#include "http/router.hpp"
#include "http/server.hpp"
#include "protocol/json.hpp"
#include "protocol/office365.hpp"

namespace crmsync::http {

/// What the pages need of the Office 365 flows (office365_api.cpp).
class flow_hooks {
public:
  virtual ~flow_hooks() = default;

  /// Runs `fn`; when a node of the cluster that may hold a key cannot be
  /// asked, answers 503 on `r` instead.
  virtual void guarded(const responder_ptr& r, const std::function<void()>& fn)
      = 0;

  /// Starts an Office 365 sign-in (302 to the identity platform) for
  /// `purpose` ("install", "signin", "page"); `extra` is the invitation
  /// token ("signin") or the page to come back to ("page").
  virtual void start_signin(const request& req, const std::string& purpose,
                            const responder_ptr& r, const std::string& extra)
      = 0;

  /// The CRM user this person is (linked, or by their sign-in name in the
  /// organization of their tenant), with the action that links them.
  virtual bool member(const o365_identity& who, tenant_id& org, user_id& user,
                      std::string& action)
      = 0;

  virtual bool org_of_tenant(const std::string& o365_tenant, tenant_id& org)
      = 0;

  /// Runs `job` once what member() and org_of_tenant() look up about `who`
  /// was fetched from the cluster without a thread waiting (at once on a
  /// single node). t13-async.
  virtual void about(const o365_identity& who, const responder_ptr& r,
                     std::function<void()> job)
      = 0;

  /// Links the person to CRM user `user` of `org` with a fresh API token
  /// (`action` as for link_office365; `page`: the token is a browser
  /// page session's), then done(user, token).
  virtual void link(const o365_identity& who, tenant_id org, user_id user,
                    const std::string& action, const responder_ptr& r,
                    std::function<void(user_record&, const std::string&)> done,
                    bool page = false)
      = 0;

  /// R1-R3 for a signed-in administrator who accepted the terms: admin
  /// consent when needed (a redirect), then the install's JSON answer.
  virtual void install(const request& req, const o365_identity& who,
                       const responder_ptr& r)
      = 0;

  /// "Associate my account" on the install's page: checks the CRM
  /// credentials, links the person to that account, then install().
  virtual void
  associate_then_install(const request& req, const o365_identity& who,
                         const json::credentials& c, const responder_ptr& r)
      = 0;

  /// R8/R9 for the person `who` (the invitation named by its link's token).
  virtual void accept_as(const request& req, const o365_identity& who,
                         const std::string& token,
                         const json::accept_body& body, const responder_ptr& r)
      = 0;

  /// R12 "Approve & Add" as `who`: errors are answered on `r`.
  virtual void approve_as(const caller& who, tenant_id org, uint64_t request,
                          const responder_ptr& r,
                          std::function<void(join_approved&)> done)
      = 0;

  /// The join request page's form with an API token (no session).
  virtual void approve_with_token_form(const request& req,
                                       const path_params& pp,
                                       const responder_ptr& r)
      = 0;
};

class page_flows;

/// Registers the pages' own routes; the flows call back into the returned
/// object for the routes they share (see below).
std::shared_ptr<page_flows> install_page_routes(api::impl& s,
                                                std::shared_ptr<flow_hooks> f);

/// A browser signed in (the callback of /o365/install, /o365/signin,
/// /invite/{token} or a page): opens a page session and sends the browser
/// on to the page of `rec`'s purpose.
void page_signed_in(page_flows& p, const o365_identity& who,
                    const signin_state_record& rec, const responder_ptr& r);

/// GET /invite/{token} of a browser: the invitation, or a sign-in first.
void invite_page(page_flows& p, const request& req, const std::string& token,
                 const responder_ptr& r);

/// GET and POST /join-requests/{org}/{id}: the approvers' page.
void approval_page(page_flows& p, const request& req, const path_params& pp,
                   const responder_ptr& r);
void approval_post(page_flows& p, const request& req, const path_params& pp,
                   const responder_ptr& r);

} // namespace crmsync::http
