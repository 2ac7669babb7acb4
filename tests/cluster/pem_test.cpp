// Unit tests of the PEM loading both TLS start-up checks share
// (cluster/pem.hpp), and of the sentences each check builds on it
// (cluster::check_tls_files, etcd::check_security): the same file read the
// same way, each error naming its own flag.
#include <catch2/catch.hpp>

#include <sys/stat.h>

#include <cstdlib>
#include <fstream>
#include <string>

#include "cluster/etcd.hpp"
#include "cluster/pem.hpp"
#include "cluster/tls.hpp"
#include "tests/support/temp_dir.hpp"

using namespace crmsync::cluster;

namespace {

void run(const std::string& cmd) {
  INFO(cmd);
  REQUIRE(std::system((cmd + " >/dev/null 2>&1").c_str()) == 0);
}

void write_file(const std::string& path, const std::string& text) {
  std::ofstream{path} << text;
  ::chmod(path.c_str(), 0600);
}

/// Two CAs with a node n1 each, an encrypted copy of ours' key and a text
/// file that holds no PEM at all.
struct pki {
  crmsync::test::temp_dir dir;
  std::string ours = dir.path() + "/ours";
  std::string theirs = dir.path() + "/theirs";
  std::string encrypted = dir.path() + "/encrypted.key";
  std::string text = dir.path() + "/text.txt";

  pki() {
    run(std::string{"bash "} + CLUSTER_CA_SCRIPT + " " + ours + " n1");
    run(std::string{"bash "} + CLUSTER_CA_SCRIPT + " " + theirs + " n1");
    run("openssl pkey -in " + ours
        + "/n1.key -aes256 -passout pass:secret -out " + encrypted);
    write_file(text, "not a certificate\n");
  }
};

} // namespace

TEST_CASE("pem: certificates and keys load, and what is not one says why, "
          "naming its flag") {
  pki p;
  std::string err;
  pem::named_file cert{"--cert", p.ours + "/n1.pem"};
  pem::named_file key{"--key", p.ours + "/n1.key"};
  CHECK(pem::certificate(cert, err));
  CHECK(pem::identity(cert, key, err));

  auto missing = p.dir.path() + "/missing.pem";
  CHECK_FALSE(pem::certificate({"--cert", missing}, err));
  CHECK(err == "--cert: cannot read '" + missing + "'");
  CHECK_FALSE(pem::identity(cert, {"--key", missing}, err));
  CHECK(err == "--key: cannot read '" + missing + "'");
  // A key is no certificate, a certificate no key, text neither.
  CHECK_FALSE(pem::certificate({"--cert", p.ours + "/n1.key"}, err));
  CHECK(err == "--cert: '" + p.ours + "/n1.key' holds no PEM certificate");
  CHECK_FALSE(pem::certificate({"--cert", p.text}, err));
  CHECK(err == "--cert: '" + p.text + "' holds no PEM certificate");
  CHECK_FALSE(pem::identity(cert, {"--key", p.ours + "/n1.pem"}, err));
  CHECK(err
        == "--key: '" + p.ours
               + "/n1.pem' holds no unencrypted PEM private key");
  // An encrypted key counts as none: a node starts unattended, nobody types
  // a passphrase (and nothing waits on a terminal for one).
  CHECK_FALSE(pem::identity(cert, {"--key", p.encrypted}, err));
  CHECK(err
        == "--key: '" + p.encrypted + "' holds no unencrypted PEM private key");
  // Another CA's key for the same node name is not this certificate's.
  CHECK_FALSE(pem::identity(cert, {"--key", p.theirs + "/n1.key"}, err));
  CHECK(err
        == "--key: '" + p.theirs
               + "/n1.key' is not the key of the certificate '" + p.ours
               + "/n1.pem'");
}

TEST_CASE("pem: the cluster transport's and etcd's checks word the same "
          "failures with their own flags") {
  pki p;
  std::string err;
  tls_files good{p.ours + "/ca.pem", p.ours + "/n1.pem", p.ours + "/n1.key"};
  CHECK(check_tls_files(good, err));

  auto files = good;
  files.key_file = p.encrypted;
  CHECK_FALSE(check_tls_files(files, err));
  CHECK(err.rfind("--cluster-key: ", 0) == 0);
  CHECK(err.find("holds no unencrypted PEM private key") != std::string::npos);
  files.key_file = p.theirs + "/n1.key";
  CHECK_FALSE(check_tls_files(files, err));
  CHECK(err.find("is not the key of the certificate") != std::string::npos);
  files = good;
  files.cert_file = p.text;
  CHECK_FALSE(check_tls_files(files, err));
  CHECK(err.rfind("--cluster-cert: ", 0) == 0);
  CHECK(err.find("holds no PEM certificate") != std::string::npos);
  // Key and certificate of another CA: they match, the CA did not sign them.
  files.cert_file = p.theirs + "/n1.pem";
  files.key_file = p.theirs + "/n1.key";
  CHECK_FALSE(check_tls_files(files, err));
  CHECK(err.find("is not valid under the cluster CA") != std::string::npos);

  std::vector<std::string> https{"https://127.0.0.1:2379"};
  etcd::security sec;
  sec.ca_file = p.ours + "/ca.pem";
  sec.cert_file = p.ours + "/n1.pem";
  sec.key_file = p.ours + "/n1.key";
  CHECK(etcd::check_security(https, sec, err));
  auto bad = sec;
  bad.key_file = p.encrypted;
  CHECK_FALSE(etcd::check_security(https, bad, err));
  CHECK(err.rfind("--etcd-key-file: ", 0) == 0);
  CHECK(err.find("holds no unencrypted PEM private key") != std::string::npos);
  bad.key_file = p.theirs + "/n1.key";
  CHECK_FALSE(etcd::check_security(https, bad, err));
  CHECK(err.find("is not the key of the certificate") != std::string::npos);
  bad = sec;
  bad.cert_file = p.text;
  CHECK_FALSE(etcd::check_security(https, bad, err));
  CHECK(err.rfind("--etcd-cert-file: ", 0) == 0);
  CHECK(err.find("holds no PEM certificate") != std::string::npos);
  bad = sec;
  bad.ca_file = p.dir.path() + "/missing.pem";
  CHECK_FALSE(etcd::check_security(https, bad, err));
  CHECK(err.rfind("--etcd-ca-file: cannot read", 0) == 0);
}
