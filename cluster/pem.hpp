// PEM files as the node's two TLS clients read them: the cluster
// transport's certificate and key (cluster/tls.cpp) and the etcd client's
// (cluster/etcd_tls.cpp). One loader, one set of OpenSSL owners and one
// wording of what is wrong, each sentence naming the flag that gave the
// file. Pure functions, any thread (OpenSSL's error queue is left empty).
#pragma once

#include <memory>
#include <string>

#include <openssl/evp.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>

namespace crmsync::cluster::pem {

/// Frees each OpenSSL object the checks hold.
struct openssl_free {
  void operator()(X509* x) const;
  void operator()(EVP_PKEY* k) const;
  void operator()(X509_STORE* s) const;
  void operator()(X509_STORE_CTX* c) const;
};
template <class T>
using owned = std::unique_ptr<T, openssl_free>;

/// A file and the flag that named it (for the error sentences).
struct named_file {
  std::string flag;
  std::string path;
};

/// The first certificate of the file (the leaf of a chain); null with
/// "FLAG: cannot read 'PATH'" or "FLAG: 'PATH' holds no PEM certificate".
owned<X509> certificate(const named_file& file, std::string& err);

/// The certificate and its private key, checked to belong together; null
/// with one sentence: either file unreadable or without its PEM object
/// ("KEY-FLAG: 'PATH' holds no unencrypted PEM private key": a node starts
/// unattended, nobody types a passphrase), or "KEY-FLAG: 'PATH' is not
/// the key of the certificate 'CERT'".
owned<X509> identity(const named_file& cert, const named_file& key,
                     std::string& err);

} // namespace crmsync::cluster::pem
