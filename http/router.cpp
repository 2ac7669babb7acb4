#include "http/router.hpp"

namespace crmsync::http {

std::vector<std::string_view> split_path(std::string_view path) {
  std::vector<std::string_view> out;
  size_t i = 0;
  while (i < path.size()) {
    if (path[i] == '/') {
      ++i;
      continue;
    }
    auto j = path.find('/', i);
    if (j == std::string_view::npos)
      j = path.size();
    out.push_back(path.substr(i, j - i));
    i = j;
  }
  return out;
}

bool split_route_path(std::string_view path,
                      std::vector<std::string_view>& out) {
  out.clear();
  if (path.empty())
    return true;
  if (path.front() != '/')
    return false;
  path.remove_prefix(1);
  if (!path.empty() && path.front() == '/')
    return false;
  if (!path.empty() && path.back() == '/')
    path.remove_suffix(1);
  if (path.empty())
    return true;
  while (true) {
    auto slash = path.find('/');
    auto seg = path.substr(0, slash);
    if (seg.empty())
      return false;
    out.push_back(seg);
    if (slash == std::string_view::npos)
      return true;
    path.remove_prefix(slash + 1);
  }
}

void router::add(std::string method, std::string pattern, route_handler h) {
  route r;
  r.method = std::move(method);
  r.pattern = pattern;
  for (auto seg : split_path(pattern))
    r.segments.emplace_back(seg);
  r.h = std::move(h);
  routes_.push_back(std::move(r));
}

std::vector<router::entry> router::table() const {
  std::vector<entry> out;
  out.reserve(routes_.size());
  for (auto& r : routes_)
    out.push_back(entry{r.method, r.pattern});
  return out;
}

router::outcome router::match(const request& req, const route_handler*& h,
                              path_params& params, std::string& allow) const {
  const std::string* pattern = nullptr;
  return match(req, h, params, allow, pattern);
}

router::outcome router::match(const request& req, const route_handler*& h,
                              path_params& params, std::string& allow,
                              const std::string*& pattern) const {
  std::vector<std::string_view> segs;
  if (!split_route_path(req.path, segs))
    return outcome::no_route;
  bool path_known = false;
  for (auto& r : routes_) {
    if (r.segments.size() != segs.size())
      continue;
    path_params captured;
    bool ok = true;
    for (size_t i = 0; i < segs.size() && ok; ++i) {
      auto& p = r.segments[i];
      if (p.size() > 2 && p.front() == '{' && p.back() == '}')
        captured.emplace_back(segs[i]);
      else
        ok = p == segs[i];
    }
    if (!ok)
      continue;
    path_known = true;
    if (r.method == req.method) {
      h = &r.h;
      pattern = &r.pattern;
      params = std::move(captured);
      return outcome::matched;
    }
    if (allow.find(r.method) == std::string::npos) {
      if (!allow.empty())
        allow += ", ";
      allow += r.method;
    }
  }
  return path_known ? outcome::wrong_method : outcome::no_route;
}

} // namespace crmsync::http
