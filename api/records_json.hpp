// JSON of the Office 365 records and audit entries, as the API shows them
// (the routes that list them and an organization's export). Tokens and
// their hashes are never part of it. Pure functions; thread-safe.
#pragma once

#include "protocol/json.hpp"
#include "protocol/office365.hpp"

namespace crmsync::http {

void write_invite(json::writer& w, const invite_record& x);
void write_join_request(json::writer& w, const join_request_record& x);
void write_audit_entry(json::writer& w, const audit_entry& x);

} // namespace crmsync::http
