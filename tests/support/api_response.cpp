#include "tests/support/api_response.hpp"

#include <stdexcept>
#include <utility>

namespace crmsync::e2e {

namespace {

std::string shorten(const std::string& s, size_t max = 600) {
  if (s.size() <= max)
    return s;
  return s.substr(0, max) + "...(" + std::to_string(s.size()) + " bytes)";
}

[[noreturn]] void json_fail(const api_response& r, std::string_view pointer,
                            std::string_view what) {
  throw std::runtime_error("JSON '" + std::string{pointer} + "': "
                           + std::string{what} + " in answer " + r.describe());
}

} // namespace

// -- api_response
// ------------------------------------------------------------------------

api_response::api_response(int s, std::string b, http::header_list h)
    : status(s), body(std::move(b)), headers(std::move(h)) {
  if (body.empty())
    return;
  parser_ = std::make_shared<simdjson::dom::parser>();
  json_ok_ = !parser_->parse(body.data(), body.size()).get(root_);
}

api_response::api_response(http::client_response r)
    : api_response(r.status, std::move(r.body), std::move(r.headers)) {}

api_response api_response::of_json(std::string body) {
  return api_response{200, std::move(body), {}};
}

std::string api_response::header(std::string_view name) const {
  auto lower = [](char c) {
    return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
  };
  for (auto& [k, v] : headers) {
    if (k.size() != name.size())
      continue;
    bool same = true;
    for (size_t i = 0; i < k.size() && same; ++i)
      same = lower(k[i]) == lower(name[i]);
    if (same)
      return v;
  }
  return {};
}

simdjson::dom::element api_response::root() const {
  if (!json_ok_)
    json_fail(*this, "", "body is not JSON");
  return root_;
}

simdjson::dom::element api_response::at(std::string_view pointer) const {
  simdjson::dom::element e;
  if (root().at_pointer(pointer).get(e))
    json_fail(*this, pointer, "no such value");
  return e;
}

bool api_response::has(std::string_view pointer) const {
  if (!json_ok_)
    return false;
  simdjson::dom::element e;
  return !root_.at_pointer(pointer).get(e);
}

std::string api_response::str(std::string_view pointer) const {
  std::string_view s;
  if (at(pointer).get_string().get(s))
    json_fail(*this, pointer, "not a string");
  return std::string{s};
}

int64_t api_response::i64(std::string_view pointer) const {
  int64_t v = 0;
  if (at(pointer).get_int64().get(v))
    json_fail(*this, pointer, "not an integer");
  return v;
}

uint64_t api_response::u64(std::string_view pointer) const {
  uint64_t v = 0;
  if (at(pointer).get_uint64().get(v))
    json_fail(*this, pointer, "not an unsigned integer");
  return v;
}

bool api_response::boolean(std::string_view pointer) const {
  bool v = false;
  if (at(pointer).get_bool().get(v))
    json_fail(*this, pointer, "not a boolean");
  return v;
}

bool api_response::is_null(std::string_view pointer) const {
  return at(pointer).is_null();
}

size_t api_response::size(std::string_view pointer) const {
  simdjson::dom::array a;
  if (at(pointer).get_array().get(a))
    json_fail(*this, pointer, "not an array");
  return a.size();
}

std::vector<std::string> api_response::keys(std::string_view pointer) const {
  simdjson::dom::object o;
  if (at(pointer).get_object().get(o))
    json_fail(*this, pointer, "not an object");
  std::vector<std::string> out;
  for (auto kv : o)
    out.emplace_back(kv.key);
  return out;
}

std::string api_response::json(std::string_view pointer) const {
  return minified(at(pointer));
}

std::string api_response::error_code() const {
  if (!has("/error/code"))
    return {};
  return str("/error/code");
}

std::string api_response::error_field() const {
  if (!has("/error/field"))
    return {};
  return str("/error/field");
}

std::string api_response::describe() const {
  return std::to_string(status) + " " + shorten(body);
}

std::string minified(simdjson::dom::element e) {
  return simdjson::minify(e);
}

} // namespace crmsync::e2e
