// crmsyncctl doctor (t16-m365): the Microsoft 365 checklist of
// docs/MICROSOFT365.md against a live configuration (see doctor.cpp).
#pragma once

#include "ctl/commands.hpp"

#include <string>

namespace crmsync::ctl {

struct doctor_options {
  /// The Office 365 tenant (id or domain) whose consent is checked; "":
  /// the token and consent checks are skipped.
  std::string tenant;
  /// The URL Microsoft reaches the node at; "": the node's --public-url.
  std::string public_url;
};

/// Runs the checks and prints them; exit_ok when every one passed (a
/// warning passes), exit_failure otherwise, exit_usage for a bad --node.
int cmd_doctor(const global_options& g, const doctor_options& d);

} // namespace crmsync::ctl
