#include "cluster/tls.hpp"

#include <dlfcn.h>

#include <cstdio>
#include <cstdlib>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509_vfy.h>

#include "cluster/pem.hpp"

namespace crmsync::cluster {

bool check_tls_files(const tls_files& files, std::string& err) {
  if (!files.complete()) {
    err = "a cluster needs --cluster-ca-file, --cluster-cert and "
          "--cluster-key (mutual TLS between nodes; scripts/cluster-ca.sh "
          "makes a CA and node certificates)";
    return false;
  }
  ERR_clear_error();
  pem::owned<X509_STORE> store{X509_STORE_new()};
  if (!store || X509_STORE_load_file(store.get(), files.ca_file.c_str()) != 1) {
    ERR_clear_error();
    err = "the cluster CA file '" + files.ca_file
          + "' cannot be read or holds no PEM certificate";
    return false;
  }
  auto cert = pem::identity({"--cluster-cert", files.cert_file},
                            {"--cluster-key", files.key_file}, err);
  if (!cert)
    return false;
  pem::owned<X509_STORE_CTX> ctx{X509_STORE_CTX_new()};
  if (!ctx
      || X509_STORE_CTX_init(ctx.get(), store.get(), cert.get(), nullptr)
             != 1) {
    ERR_clear_error();
    err = "cannot check the cluster certificate (out of memory)";
    return false;
  }
  if (X509_verify_cert(ctx.get()) != 1) {
    auto code = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    err = "the cluster certificate '" + files.cert_file
          + "' is not valid under the cluster CA '" + files.ca_file
          + "': " + X509_verify_cert_error_string(code);
    return false;
  }
  return true;
}

} // namespace crmsync::cluster

// -- OpenSSL's error queue on CAF's multiplexer thread
// ------------------------------------------------------------
//
// SSL_get_error() reads the calling thread's OpenSSL error queue before
// anything else, so the queue must be empty when an SSL_read, SSL_write,
// SSL_connect or SSL_accept starts (SSL_get_error(3)). CAF 0.17.6's
// session (libcaf_openssl) never empties it: it drains the queue only
// inside a log statement that Debian's build compiles out. Every refused
// handshake (a client without a cluster certificate) and every peer that
// vanishes without a TLS close leaves an error on the multiplexer thread,
// and the next operation there that merely has to wait for bytes is taken
// for a failure: a member's connection is dropped, with the messages in
// flight on it. Anyone who can reach the cluster port could thus cut the
// members apart with refused connections.
//
// These definitions, in the program, take the place of libssl's for every
// caller (the dynamic linker binds libcaf_openssl's calls to the
// program's symbols first); each empties the queue and calls libssl's own
// function. Clearing before an operation is what OpenSSL asks of every
// caller, so other users of libssl in the process are unaffected.

namespace {

template <class F>
F next_definition(const char* name) {
  auto f = reinterpret_cast<F>(dlsym(RTLD_NEXT, name));
  if (!f) {
    std::fprintf(stderr, "crmsync: libssl has no %s\n", name);
    std::abort();
  }
  return f;
}

} // namespace

extern "C" {

int SSL_read(SSL* ssl, void* buf, int num) {
  static auto next = next_definition<int (*)(SSL*, void*, int)>("SSL_read");
  ERR_clear_error();
  return next(ssl, buf, num);
}

int SSL_write(SSL* ssl, const void* buf, int num) {
  static auto next
      = next_definition<int (*)(SSL*, const void*, int)>("SSL_write");
  ERR_clear_error();
  return next(ssl, buf, num);
}

int SSL_connect(SSL* ssl) {
  static auto next = next_definition<int (*)(SSL*)>("SSL_connect");
  ERR_clear_error();
  return next(ssl);
}

int SSL_accept(SSL* ssl) {
  static auto next = next_definition<int (*)(SSL*)>("SSL_accept");
  ERR_clear_error();
  return next(ssl);
}

} // extern "C"
