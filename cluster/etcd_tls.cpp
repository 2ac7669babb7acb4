// The start-up check of the etcd client's TLS and authentication settings
// (t15-ops): every mistake an operator can make with the five flags is
// one sentence naming the flag, before the node tries etcd at all.
#include "cluster/etcd.hpp"

#include <sys/stat.h>

#include <fstream>

#include "cluster/pem.hpp"

namespace crmsync::cluster::etcd {

namespace {

/// A secret file others than its owner and group may read (or anyone may
/// write) is refused: a password or key there is no secret.
bool private_file(const std::string& flag, const std::string& path,
                  std::string& err) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) {
    err = flag + ": cannot read '" + path + "' (no such file)";
    return false;
  }
  if ((st.st_mode & (S_IROTH | S_IWOTH | S_IWGRP)) != 0) {
    err = flag + ": '" + path
          + "' may be read or written by other users; chmod 0600 (or 0640 "
            "with a group of its own) it";
    return false;
  }
  return true;
}

} // namespace

bool read_password(const std::string& path, std::string& out,
                   std::string& err) {
  std::ifstream in{path};
  out.clear();
  if (!in) {
    err = "--etcd-password-file: cannot read '" + path + "'";
    return false;
  }
  std::getline(in, out);
  while (!out.empty() && (out.back() == '\r' || out.back() == '\n'))
    out.pop_back();
  if (out.empty()) {
    err = "--etcd-password-file: '" + path
          + "' holds no password on its first line";
    return false;
  }
  return true;
}

bool check_security(const std::vector<std::string>& endpoints,
                    const security& sec, std::string& err) {
  bool tls = !endpoints.empty() && endpoints.front().rfind("https://", 0) == 0;
  bool files
      = !sec.ca_file.empty() || !sec.cert_file.empty() || !sec.key_file.empty();
  if (!tls && files) {
    err = "--etcd-ca-file, --etcd-cert-file and --etcd-key-file are for "
          "https:// endpoints; --etcd-endpoints names http:// ones";
    return false;
  }
  if (tls && sec.ca_file.empty()) {
    err = "--etcd-endpoints names https:// endpoints: --etcd-ca-file must "
          "name the CA that signed etcd's server certificate";
    return false;
  }
  if (sec.cert_file.empty() != sec.key_file.empty()) {
    err = "--etcd-cert-file and --etcd-key-file go together (etcd's "
          "--client-cert-auth asks for both)";
    return false;
  }
  if (sec.user.empty() != sec.password_file.empty()) {
    err = "--etcd-user and --etcd-password-file go together (etcd's "
          "user/role authentication)";
    return false;
  }
  if (!sec.user.empty() && !sec.cert_file.empty()) {
    // etcd 3.4's gateway answers 400 "CommonName of client sending a
    // request against gateway will be ignored" to every request that
    // shows a certificate once authentication is on (tried).
    err = "--etcd-user and --etcd-cert-file exclude each other: etcd's "
          "JSON gateway refuses client certificates once its "
          "authentication is on; prove the node with one of them";
    return false;
  }
  if (!sec.user.empty() && !tls) {
    err = "--etcd-user: the password would cross the network in clear; "
          "use https:// endpoints (--etcd-ca-file)";
    return false;
  }
  if (tls && !pem::certificate({"--etcd-ca-file", sec.ca_file}, err))
    return false;
  if (!sec.cert_file.empty()
      && (!private_file("--etcd-key-file", sec.key_file, err)
          || !pem::identity({"--etcd-cert-file", sec.cert_file},
                            {"--etcd-key-file", sec.key_file}, err)))
    return false;
  if (!sec.user.empty()) {
    std::string password;
    if (!private_file("--etcd-password-file", sec.password_file, err)
        || !read_password(sec.password_file, password, err))
      return false;
  }
  return true;
}

} // namespace crmsync::cluster::etcd
