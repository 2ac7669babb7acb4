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
#include "protocol/records.hpp"

namespace crmsync::storage::codec {

std::string encode(const org_record& x);
std::string encode(const user_record& x);
std::string encode(const event_record& x);
std::string encode(const mailbox_status& x);
std::string encode(const calendar_status& x);

bool decode(std::string_view in, org_record& x);
bool decode(std::string_view in, user_record& x);
bool decode(std::string_view in, event_record& x);
bool decode(std::string_view in, mailbox_status& x);
bool decode(std::string_view in, calendar_status& x);

} // namespace crmsync::storage::codec
