#include "emulator/jwt_signer.hpp"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <stdexcept>
#include <vector>

#include "common/crypto.hpp"

namespace crmsync::emulator {

struct jwt_signer::impl {
  EVP_PKEY* key = nullptr;
  std::string kid;

  ~impl() {
    EVP_PKEY_free(key);
  }

  std::string big_param(const char* name) const {
    BIGNUM* bn = nullptr;
    if (EVP_PKEY_get_bn_param(key, name, &bn) != 1)
      throw std::runtime_error("cannot read RSA key parameter");
    std::string bytes(static_cast<size_t>(BN_num_bytes(bn)), '\0');
    BN_bn2bin(bn, reinterpret_cast<unsigned char*>(bytes.data()));
    BN_free(bn);
    return crypto::base64url(bytes);
  }
};

jwt_signer::jwt_signer() : impl_(std::make_unique<impl>()) {
  impl_->key = EVP_RSA_gen(2048);
  if (impl_->key == nullptr)
    throw std::runtime_error("cannot generate an RSA key");
  impl_->kid = crypto::random_token(12);
}

jwt_signer::~jwt_signer() = default;

const std::string& jwt_signer::key_id() const {
  return impl_->kid;
}

std::string jwt_signer::sign(std::string_view payload_json) const {
  std::string header
      = R"({"typ":"JWT","alg":"RS256","kid":")" + impl_->kid + R"("})";
  std::string input
      = crypto::base64url(header) + "." + crypto::base64url(payload_json);
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  if (ctx == nullptr)
    throw std::runtime_error("out of memory");
  size_t len = 0;
  std::vector<unsigned char> sig;
  bool ok
      = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, impl_->key) == 1
        && EVP_DigestSign(ctx, nullptr, &len,
                          reinterpret_cast<const unsigned char*>(input.data()),
                          input.size())
               == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, sig.data(), &len,
                        reinterpret_cast<const unsigned char*>(input.data()),
                        input.size())
         == 1;
  }
  EVP_MD_CTX_free(ctx);
  if (!ok)
    throw std::runtime_error("RS256 signing failed");
  return input + "."
         + crypto::base64url(
             std::string_view{reinterpret_cast<const char*>(sig.data()), len});
}

std::string jwt_signer::jwks() const {
  return R"({"keys":[{"kty":"RSA","use":"sig","alg":"RS256","kid":")"
         + impl_->kid + R"(","n":")" + impl_->big_param(OSSL_PKEY_PARAM_RSA_N)
         + R"(","e":")" + impl_->big_param(OSSL_PKEY_PARAM_RSA_E) + R"("}]})";
}

} // namespace crmsync::emulator
