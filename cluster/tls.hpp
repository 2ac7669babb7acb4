// The cluster transport's credentials: every node holds a certificate and
// key signed by the cluster's own CA, and node-to-node traffic is mutual
// TLS through CAF's OpenSSL module (a peer without such a certificate is
// never connected). Checked once at start-up, on the main thread.
#pragma once

#include <string>

namespace crmsync::cluster {

/// PEM files: the cluster CA's certificate(s), this node's certificate
/// (chain) and its private key.
struct tls_files {
  std::string ca_file;
  std::string cert_file;
  std::string key_file;

  bool complete() const {
    return !ca_file.empty() && !cert_file.empty() && !key_file.empty();
  }
};

/// Reads the three files the way the transport will and says what is
/// wrong in one sentence: a file that cannot be read or holds no PEM
/// object of its kind, a key that does not belong to the certificate, or
/// a certificate the CA did not sign (or that is expired). CAF itself
/// would only throw at the first connection.
bool check_tls_files(const tls_files& files, std::string& err);

} // namespace crmsync::cluster
