// A TLS server's certificate chain judged by OpenSSL's own X509_verify_cert at a chosen
// time: the trust store, purpose, security level and host check a TLS client uses, with the
// verification time set instead of read from the local clock. Free of any Node API. The
// OpenSSL symbols resolve from the process: Node's own (static or shared) libcrypto.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

typedef struct x509_store_st X509_STORE;

namespace htntp {

// One certificate of a verified path and when it is valid (seconds since the epoch, both ends included).
struct CertificateWindow {
  std::string subject;
  int64_t notBefore = 0;
  int64_t notAfter = 0;
};

struct ChainVerdict {
  bool ok = false;
  // X509_V_ERR_* (0 when ok), its name as Node spells it (CERT_HAS_EXPIRED...) and OpenSSL's text.
  int error = 0;
  std::string code;
  std::string message;
  // Depth of the certificate the error is about (-1: none).
  int depth = -1;
  // The path OpenSSL built, server certificate first, trust anchor last (only when ok).
  std::vector<CertificateWindow> path;
};

class TrustStore {
 public:
  // The certificates of a PEM bundle as trust anchors; blocks that do not parse are skipped.
  explicit TrustStore(const std::string& pem);
  ~TrustStore();
  TrustStore(const TrustStore&) = delete;
  TrustStore& operator=(const TrustStore&) = delete;

  // Anchors taken from the bundle.
  size_t size() const { return count_; }

  // `ders`: the presented chain (DER), server certificate first. `host`: a DNS name, or an
  // IPv4/IPv6 literal checked against IP SANs. Purpose ssl_server, auth level 1, at `atTime`.
  ChainVerdict verify(const std::vector<std::string>& ders, const std::string& host, int64_t atTime) const;

 private:
  X509_STORE* store_ = nullptr;
  size_t count_ = 0;
};

// OpenSSL's name for a verification error as Node reports it (X509_V_ERR_ less its prefix).
const char* verifyErrorName(int error);

}  // namespace htntp
