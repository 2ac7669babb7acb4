#include "emulator/notifier.hpp"

#include <algorithm>
#include <map>
#include <vector>

#include "common/crypto.hpp"
#include "http/client.hpp"
#include "http/url.hpp"

namespace crmsync::emulator {

bool split_http_url(const std::string& url, std::string& host, uint16_t& port,
                    std::string& target) {
  bool secure = false;
  return split_url(url, secure, host, port, target) && !secure;
}

bool split_url(const std::string& url, bool& secure, std::string& host,
               uint16_t& port, std::string& target) {
  const std::string http_scheme = "http://";
  const std::string https_scheme = "https://";
  std::string rest;
  if (url.compare(0, http_scheme.size(), http_scheme) == 0) {
    secure = false;
    rest = url.substr(http_scheme.size());
  } else if (url.compare(0, https_scheme.size(), https_scheme) == 0) {
    secure = true;
    rest = url.substr(https_scheme.size());
  } else {
    return false;
  }
  auto slash = rest.find_first_of("/?");
  auto authority = rest.substr(0, slash);
  target = slash == std::string::npos ? "/" : rest.substr(slash);
  if (!target.empty() && target[0] == '?')
    target = "/" + target;
  std::string hostport = authority;
  port = secure ? 443 : 80;
  // "[v6]:port": the port follows the bracket; the brackets are dropped.
  auto bracket = hostport.find(']');
  if (!hostport.empty() && hostport[0] == '[') {
    if (bracket == std::string::npos)
      return false;
    auto rest = hostport.substr(bracket + 1);
    hostport = hostport.substr(1, bracket - 1);
    if (rest.empty()) {
      host = hostport;
      return !host.empty();
    }
    if (rest[0] != ':')
      return false;
    hostport += rest; // parsed below as "v6:port"
  }
  auto colon = hostport.rfind(':');
  if (colon != std::string::npos) {
    auto p = hostport.substr(colon + 1);
    if (p.empty() || p.size() > 5
        || p.find_first_not_of("0123456789") != std::string::npos)
      return false;
    auto n = std::stoul(p);
    if (n == 0 || n > 65535)
      return false;
    port = static_cast<uint16_t>(n);
    hostport = hostport.substr(0, colon);
  }
  host = hostport;
  return !host.empty();
}

notifier::notifier(notifier_config cfg) : cfg_(cfg) {
  worker_ = std::thread([this] { run(); });
}

notifier::~notifier() {
  {
    std::lock_guard<std::mutex> guard{mtx_};
    stopping_ = true;
  }
  cv_.notify_all();
  worker_.join();
}

void notifier::enqueue(const std::string& url, std::string json,
                       std::chrono::milliseconds delay) {
  auto now = std::chrono::steady_clock::now();
  {
    std::lock_guard<std::mutex> guard{mtx_};
    queue_.push_back(
        item{url, std::move(json), now, now + delay, cfg_.first_retry});
  }
  cv_.notify_all();
}

notifier_stats notifier::stats() const {
  std::lock_guard<std::mutex> guard{mtx_};
  auto out = stats_;
  out.pending = queue_.size() + posting_;
  return out;
}

bool notifier::post(const std::string& url, const std::string& body,
                    std::chrono::milliseconds timeout, int& status,
                    std::string& answer, std::string& err) const {
  std::string host, target;
  uint16_t port = 0;
  bool secure = false;
  if (!split_url(url, secure, host, port, target)) {
    err = "not an http:// or https:// URL";
    return false;
  }
  http::client c{host, port, timeout,
                 http::tls_options{secure, cfg_.extra_ca_file}};
  http::client_response res;
  bool json = !body.empty() && body.front() == '{';
  http::header_list headers{
      {"Content-Type",
       json ? "application/json; charset=utf-8" : "text/plain; charset=utf-8"}};
  if (!c.request("POST", target, body, headers, res, err))
    return false;
  status = res.status;
  answer = std::move(res.body);
  return true;
}

bool notifier::validate(const std::string& url, std::string& err) const {
  auto token = "Validation: Testing client application reachability for "
               "subscription Request-Id: "
               + crypto::random_token(12);
  auto with_token = url + (url.find('?') == std::string::npos ? "?" : "&")
                    + "validationToken=" + http::percent_encode(token);
  int status = 0;
  std::string answer;
  if (!post(with_token, "", cfg_.validation_timeout, status, answer, err))
    return false;
  if (status != 200) {
    err = "validation request answered " + std::to_string(status);
    return false;
  }
  if (answer != token) {
    err = "validation response did not echo the decoded validation token";
    return false;
  }
  return true;
}

void notifier::run() {
  std::unique_lock<std::mutex> lock{mtx_};
  for (;;) {
    if (stopping_)
      return;
    if (queue_.empty()) {
      cv_.wait(lock);
      continue;
    }
    auto now = std::chrono::steady_clock::now();
    auto next_due = std::min_element(queue_.begin(), queue_.end(),
                                     [](const item& a, const item& b) {
                                       return a.due < b.due;
                                     })
                        ->due;
    if (next_due > now) {
      cv_.wait_until(lock, next_due);
      continue;
    }
    // Everything due for the URL of the first due item goes in one POST.
    std::string url;
    for (auto& i : queue_)
      if (i.due <= now) {
        url = i.url;
        break;
      }
    std::vector<item> batch;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->url == url && it->due <= now) {
        batch.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        ++it;
      }
    }
    std::string body = "{\"value\":[";
    for (size_t k = 0; k < batch.size(); ++k) {
      if (k > 0)
        body += ',';
      body += batch[k].json;
    }
    body += "]}";
    posting_ = batch.size();
    lock.unlock();
    int status = 0;
    std::string answer, err;
    bool ok = post(url, body, cfg_.answer_timeout, status, answer, err)
              && status >= 200 && status < 300;
    lock.lock();
    posting_ = 0;
    if (ok) {
      stats_.delivered += batch.size();
      continue;
    }
    auto after = std::chrono::steady_clock::now();
    for (auto& i : batch) {
      if (after - i.first_try >= cfg_.retry_window) {
        ++stats_.dropped;
        continue;
      }
      ++stats_.retried;
      i.due = after + i.backoff;
      i.backoff = std::min<std::chrono::milliseconds>(i.backoff * 2,
                                                      std::chrono::minutes(5));
      queue_.push_back(std::move(i));
    }
  }
}

} // namespace crmsync::emulator
