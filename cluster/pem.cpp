#include "cluster/pem.hpp"

#include <cstdio>

#include <openssl/err.h>
#include <openssl/pem.h>

namespace crmsync::cluster::pem {

void openssl_free::operator()(X509* x) const {
  X509_free(x);
}
void openssl_free::operator()(EVP_PKEY* k) const {
  EVP_PKEY_free(k);
}
void openssl_free::operator()(X509_STORE* s) const {
  X509_STORE_free(s);
}
void openssl_free::operator()(X509_STORE_CTX* c) const {
  X509_STORE_CTX_free(c);
}

namespace {

struct file_closer {
  void operator()(FILE* f) const {
    std::fclose(f);
  }
};

/// Asked for the passphrase of an encrypted key: there is none (OpenSSL's
/// default callback would prompt on the terminal).
int no_passphrase(char*, int, int, void*) {
  return 0;
}

/// Opens the file and reads one object with READ (PEM_read_X509 or
/// PEM_read_PrivateKey); null with a sentence naming the flag.
template <class T, class Read>
owned<T> read_one(const named_file& file, Read read, const char* what,
                  std::string& err) {
  std::unique_ptr<FILE, file_closer> f{std::fopen(file.path.c_str(), "r")};
  if (!f) {
    err = file.flag + ": cannot read '" + file.path + "'";
    return nullptr;
  }
  owned<T> out{read(f.get(), nullptr, no_passphrase, nullptr)};
  ERR_clear_error();
  if (!out)
    err = file.flag + ": '" + file.path + "' holds no " + what;
  return out;
}

} // namespace

owned<X509> certificate(const named_file& file, std::string& err) {
  return read_one<X509>(file, PEM_read_X509, "PEM certificate", err);
}

owned<X509> identity(const named_file& cert, const named_file& key,
                     std::string& err) {
  auto c = certificate(cert, err);
  if (!c)
    return nullptr;
  auto k = read_one<EVP_PKEY>(key, PEM_read_PrivateKey,
                              "unencrypted PEM private key", err);
  if (!k)
    return nullptr;
  bool mine = X509_check_private_key(c.get(), k.get()) == 1;
  ERR_clear_error();
  if (!mine) {
    err = key.flag + ": '" + key.path + "' is not the key of the certificate '"
          + cert.path + "'";
    return nullptr;
  }
  return c;
}

} // namespace crmsync::cluster::pem
