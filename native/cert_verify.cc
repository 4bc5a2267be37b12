// See cert_verify.h. Each certificate and store is owned by one RAII holder, so every path
// out of a verification frees what it made.
#include "cert_verify.h"

#include <openssl/asn1.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>

#include <memory>

namespace htntp {

namespace {

struct FreeX509 {
  void operator()(X509* certificate) const { X509_free(certificate); }
};
struct FreeStack {
  void operator()(STACK_OF(X509) * stack) const { sk_X509_pop_free(stack, X509_free); }
};
struct FreeContext {
  void operator()(X509_STORE_CTX* context) const { X509_STORE_CTX_free(context); }
};
struct FreeBio {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
using X509Holder = std::unique_ptr<X509, FreeX509>;

X509Holder fromDer(const std::string& der) {
  const unsigned char* cursor = reinterpret_cast<const unsigned char*>(der.data());
  X509Holder certificate(d2i_X509(nullptr, &cursor, static_cast<long>(der.size())));
  // Trailing bytes after the certificate are not a certificate either.
  if (certificate && cursor != reinterpret_cast<const unsigned char*>(der.data()) + der.size()) certificate.reset();
  return certificate;
}

// Through ASN1_TIME_diff from the epoch: exact where time_t is 32 bits (armv7) too.
bool toEpoch(const ASN1_TIME* time, int64_t* out) {
  struct FreeTime {
    void operator()(ASN1_TIME* time) const { ASN1_TIME_free(time); }
  };
  std::unique_ptr<ASN1_TIME, FreeTime> epoch(ASN1_TIME_set(nullptr, 0));
  int days = 0;
  int seconds = 0;
  if (time == nullptr || !epoch || ASN1_TIME_diff(&days, &seconds, epoch.get(), time) != 1) return false;
  *out = static_cast<int64_t>(days) * 86400 + seconds;
  return true;
}

std::string subjectOf(X509* certificate) {
  std::unique_ptr<BIO, FreeBio> bio(BIO_new(BIO_s_mem()));
  if (!bio || X509_NAME_print_ex(bio.get(), X509_get_subject_name(certificate), 0, XN_FLAG_RFC2253) < 0) return "";
  char* data = nullptr;
  const long length = BIO_get_mem_data(bio.get(), &data);
  return length > 0 ? std::string(data, static_cast<size_t>(length)) : "";
}

ChainVerdict failed(int error, const std::string& message, int depth) {
  ChainVerdict verdict;
  verdict.error = error;
  verdict.code = verifyErrorName(error);
  verdict.message = message;
  verdict.depth = depth;
  return verdict;
}

// Host and IP checks as a TLS client asks them (the flags of `openssl verify -verify_hostname`).
bool setPeerName(X509_VERIFY_PARAM* param, const std::string& host) {
  if (X509_VERIFY_PARAM_set1_ip_asc(param, host.c_str()) == 1) return true;
  ERR_clear_error();
  return X509_VERIFY_PARAM_set1_host(param, host.c_str(), host.size()) == 1;
}

}  // namespace

const char* verifyErrorName(int error) {
  switch (error) {
#define X(name) \
  case X509_V_ERR_##name: \
    return #name;
    X(UNSPECIFIED) X(UNABLE_TO_GET_ISSUER_CERT) X(UNABLE_TO_GET_CRL) X(UNABLE_TO_DECRYPT_CERT_SIGNATURE) \
    X(UNABLE_TO_DECRYPT_CRL_SIGNATURE) X(UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY) X(CERT_SIGNATURE_FAILURE) \
    X(CRL_SIGNATURE_FAILURE) X(CERT_NOT_YET_VALID) X(CERT_HAS_EXPIRED) X(CRL_NOT_YET_VALID) X(CRL_HAS_EXPIRED) \
    X(ERROR_IN_CERT_NOT_BEFORE_FIELD) X(ERROR_IN_CERT_NOT_AFTER_FIELD) X(ERROR_IN_CRL_LAST_UPDATE_FIELD) \
    X(ERROR_IN_CRL_NEXT_UPDATE_FIELD) X(OUT_OF_MEM) X(DEPTH_ZERO_SELF_SIGNED_CERT) X(SELF_SIGNED_CERT_IN_CHAIN) \
    X(UNABLE_TO_GET_ISSUER_CERT_LOCALLY) X(UNABLE_TO_VERIFY_LEAF_SIGNATURE) X(CERT_CHAIN_TOO_LONG) \
    X(CERT_REVOKED) X(NO_ISSUER_PUBLIC_KEY) X(PATH_LENGTH_EXCEEDED) X(INVALID_PURPOSE) X(CERT_UNTRUSTED) \
    X(CERT_REJECTED) X(SUBJECT_ISSUER_MISMATCH) X(AKID_SKID_MISMATCH) X(AKID_ISSUER_SERIAL_MISMATCH) \
    X(KEYUSAGE_NO_CERTSIGN) X(UNABLE_TO_GET_CRL_ISSUER) X(UNHANDLED_CRITICAL_EXTENSION) X(KEYUSAGE_NO_CRL_SIGN) \
    X(UNHANDLED_CRITICAL_CRL_EXTENSION) X(INVALID_NON_CA) X(PROXY_PATH_LENGTH_EXCEEDED) \
    X(KEYUSAGE_NO_DIGITAL_SIGNATURE) X(PROXY_CERTIFICATES_NOT_ALLOWED) X(INVALID_EXTENSION) \
    X(INVALID_POLICY_EXTENSION) X(NO_EXPLICIT_POLICY) X(DIFFERENT_CRL_SCOPE) X(UNSUPPORTED_EXTENSION_FEATURE) \
    X(UNNESTED_RESOURCE) X(PERMITTED_VIOLATION) X(EXCLUDED_VIOLATION) X(SUBTREE_MINMAX) \
    X(APPLICATION_VERIFICATION) X(UNSUPPORTED_CONSTRAINT_TYPE) X(UNSUPPORTED_CONSTRAINT_SYNTAX) \
    X(UNSUPPORTED_NAME_SYNTAX) X(CRL_PATH_VALIDATION_ERROR) X(PATH_LOOP) X(SUITE_B_INVALID_VERSION) \
    X(SUITE_B_INVALID_ALGORITHM) X(SUITE_B_INVALID_CURVE) X(SUITE_B_INVALID_SIGNATURE_ALGORITHM) \
    X(SUITE_B_LOS_NOT_ALLOWED) X(SUITE_B_CANNOT_SIGN_P_384_WITH_P_256) X(HOSTNAME_MISMATCH) X(EMAIL_MISMATCH) \
    X(IP_ADDRESS_MISMATCH) X(DANE_NO_MATCH) X(EE_KEY_TOO_SMALL) X(CA_KEY_TOO_SMALL) X(CA_MD_TOO_WEAK) \
    X(INVALID_CALL) X(STORE_LOOKUP) X(NO_VALID_SCTS) X(PROXY_SUBJECT_NAME_VIOLATION) X(OCSP_VERIFY_NEEDED) \
    X(OCSP_VERIFY_FAILED) X(OCSP_CERT_UNKNOWN) X(UNSUPPORTED_SIGNATURE_ALGORITHM) \
    X(SIGNATURE_ALGORITHM_MISMATCH) X(SIGNATURE_ALGORITHM_INCONSISTENCY) X(INVALID_CA) \
    X(PATHLEN_INVALID_FOR_NON_CA) X(PATHLEN_WITHOUT_KU_KEY_CERT_SIGN) X(KU_KEY_CERT_SIGN_INVALID_FOR_NON_CA) \
    X(ISSUER_NAME_EMPTY) X(SUBJECT_NAME_EMPTY) X(MISSING_AUTHORITY_KEY_IDENTIFIER) \
    X(MISSING_SUBJECT_KEY_IDENTIFIER) X(EMPTY_SUBJECT_ALT_NAME) X(EMPTY_SUBJECT_SAN_NOT_CRITICAL) \
    X(CA_BCONS_NOT_CRITICAL) X(AUTHORITY_KEY_IDENTIFIER_CRITICAL) X(SUBJECT_KEY_IDENTIFIER_CRITICAL) \
    X(CA_CERT_MISSING_KEY_USAGE) X(EXTENSIONS_REQUIRE_VERSION_3) X(EC_KEY_EXPLICIT_PARAMS)
#undef X
    case X509_V_OK:
      return "OK";
    default:
      return "UNKNOWN_VERIFY_ERROR";
  }
}

TrustStore::TrustStore(const std::string& pem) : store_(X509_STORE_new()) {
  if (store_ == nullptr) return;
  std::unique_ptr<BIO, FreeBio> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
  if (!bio) return;
  // PEM_read_bio_X509 stops at the end or at a block it cannot read: a bad block is skipped
  // by reading on from the next BEGIN line, as Node does for NODE_EXTRA_CA_CERTS.
  size_t blocks = 0;
  for (size_t at = pem.find("-----BEGIN"); at != std::string::npos; at = pem.find("-----BEGIN", at + 1)) blocks += 1;
  for (size_t block = 0; block < blocks; ++block) {
    X509Holder certificate(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!certificate) {
      const unsigned long reason = ERR_peek_last_error();
      ERR_clear_error();
      if (ERR_GET_REASON(reason) == PEM_R_NO_START_LINE) break;
      continue;
    }
    if (X509_STORE_add_cert(store_, certificate.get()) == 1) count_ += 1;
    ERR_clear_error();
  }
}

TrustStore::~TrustStore() { X509_STORE_free(store_); }

ChainVerdict TrustStore::verify(const std::vector<std::string>& ders, const std::string& host, int64_t atTime) const {
  if (store_ == nullptr) return failed(X509_V_ERR_OUT_OF_MEM, "no trust store", -1);
  if (ders.empty()) return failed(X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY, "no certificate presented", 0);
  X509Holder leaf = fromDer(ders.front());
  if (!leaf) return failed(X509_V_ERR_UNSPECIFIED, "the server's certificate does not parse", 0);
  std::unique_ptr<STACK_OF(X509), FreeStack> untrusted(sk_X509_new_null());
  if (!untrusted) return failed(X509_V_ERR_OUT_OF_MEM, "out of memory", -1);
  for (size_t index = 1; index < ders.size(); ++index) {
    X509Holder certificate = fromDer(ders[index]);
    if (!certificate) {
      return failed(X509_V_ERR_UNSPECIFIED, "a presented certificate does not parse", static_cast<int>(index));
    }
    if (sk_X509_push(untrusted.get(), certificate.get()) == 0) {
      return failed(X509_V_ERR_OUT_OF_MEM, "out of memory", -1);
    }
    certificate.release();
  }
  std::unique_ptr<X509_STORE_CTX, FreeContext> context(X509_STORE_CTX_new());
  if (!context || X509_STORE_CTX_init(context.get(), store_, leaf.get(), untrusted.get()) != 1) {
    ERR_clear_error();
    return failed(X509_V_ERR_OUT_OF_MEM, "X509_STORE_CTX_init failed", -1);
  }
  X509_VERIFY_PARAM* param = X509_STORE_CTX_get0_param(context.get());
  X509_VERIFY_PARAM_set_purpose(param, X509_PURPOSE_SSL_SERVER);
  X509_VERIFY_PARAM_set_auth_level(param, 1);
  X509_VERIFY_PARAM_set_time(param, static_cast<time_t>(atTime));
  if (!setPeerName(param, host)) {
    ERR_clear_error();
    return failed(X509_V_ERR_HOSTNAME_MISMATCH, "the host name cannot be checked", 0);
  }
  const int result = X509_verify_cert(context.get());
  const int error = X509_STORE_CTX_get_error(context.get());
  ERR_clear_error();
  if (result != 1 || error != X509_V_OK) {
    const int code = error == X509_V_OK ? X509_V_ERR_UNSPECIFIED : error;
    return failed(code, X509_verify_cert_error_string(code), X509_STORE_CTX_get_error_depth(context.get()));
  }
  ChainVerdict verdict;
  verdict.ok = true;
  verdict.code = "OK";
  STACK_OF(X509)* chain = X509_STORE_CTX_get0_chain(context.get());
  for (int index = 0; index < sk_X509_num(chain); ++index) {
    X509* certificate = sk_X509_value(chain, index);
    CertificateWindow window;
    window.subject = subjectOf(certificate);
    if (!toEpoch(X509_get0_notBefore(certificate), &window.notBefore) ||
        !toEpoch(X509_get0_notAfter(certificate), &window.notAfter)) {
      return failed(X509_V_ERR_ERROR_IN_CERT_NOT_BEFORE_FIELD, "a validity date does not parse", index);
    }
    verdict.path.push_back(window);
  }
  return verdict;
}

}  // namespace htntp
