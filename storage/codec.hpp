// The on-disk value format of every record: ours, versioned, explicit.
//
// A value is [kind byte][format version byte][fields]; integers are LEB128
// varints (signed ones zig-zag), strings are length-prefixed. Decoding is
// bounds-checked and answers false on any malformed or unknown input, so a
// damaged value is reported, never misread. CAF's serialization is never
// stored. Pure functions; thread-safe.
#pragma once

#include <string>
#include <string_view>

#include "protocol/messages.hpp"
#include "protocol/office365.hpp"
#include "protocol/records.hpp"
#include "protocol/sync.hpp"

namespace crmsync::storage::codec {

std::string encode(const org_record& x);
std::string encode(const user_record& x);
std::string encode(const event_record& x);
std::string encode(const mailbox_status& x);
std::string encode(const calendar_status& x);

std::string encode(const invite_record& x);
std::string encode(const join_request_record& x);
std::string encode(const audit_entry& x);
std::string encode(const mail_item& x);
std::string encode(const signin_state_record& x);
std::string encode(const o365_session_record& x);
std::string encode(const sync_request& x);
std::string encode(const sync_link& x);
std::string encode(const sync_change& x);
std::string encode(const sync_conflict& x);

bool decode(std::string_view in, org_record& x);
bool decode(std::string_view in, user_record& x);
bool decode(std::string_view in, event_record& x);
bool decode(std::string_view in, mailbox_status& x);
bool decode(std::string_view in, calendar_status& x);
bool decode(std::string_view in, invite_record& x);
bool decode(std::string_view in, join_request_record& x);
bool decode(std::string_view in, audit_entry& x);
bool decode(std::string_view in, mail_item& x);
bool decode(std::string_view in, signin_state_record& x);
bool decode(std::string_view in, o365_session_record& x);
bool decode(std::string_view in, sync_request& x);
bool decode(std::string_view in, sync_link& x);
bool decode(std::string_view in, sync_change& x);
bool decode(std::string_view in, sync_conflict& x);

} // namespace crmsync::storage::codec
