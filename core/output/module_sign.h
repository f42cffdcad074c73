// Signed modules for kernels that check them (Secure Boot, module.sig_enforce): a signature
// appended the way the kernel's scripts/sign-file appends one, and its check.
//
// A signed module is the module's bytes, then a detached CMS (PKCS#7) SignedData over them in
// DER (no certificates in it, the signer named by the certificate's issuer and serial number, no
// signed attributes), then the 12-byte struct module_signature (id_type 2, PKEY_ID_PKCS7, and the
// signature's length as a big-endian u32; every other field 0), then the 28 bytes
// "~Module signature appended~\n". The hash is the one the kernel's config names
// (CONFIG_MODULE_SIG_HASH). OpenSSL's CMS does the cryptography.
#pragma once

#include <cstddef>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

namespace kbuild {

// The hash a kernel's config names for module signatures (CONFIG_MODULE_SIG_HASH), "" when it
// names none (a kernel built without CONFIG_MODULE_SIG). Throws Error when the file cannot be read.
std::string module_sig_hash(const std::filesystem::path& config);

// The hash used when the kernel's config names none: sha512, the default of the kernel's own
// "Hash algorithm to sign modules" choice since late 2024 (before that the choice's first entry,
// SHA-1, was the default; OpenSSL 3 setups distrust it).
inline constexpr const char* kDefaultModuleSigHash = "sha512";

// Returns when the kernel can sign modules with this hash (sha1, sha224, sha256, sha384, sha512,
// sha3-256, sha3-384, sha3-512); else throws Error saying why not ("'md5' is not a hash ...").
void check_module_sig_hash(const std::string& hash);

// Who signed a module and with what: index.json's "signature" of an artifact.
struct ModuleSignature {
    std::string signer;  // the certificate's subject CN, else its O
    std::string key_id;  // its serial number, as modinfo's sig_key shows it: "1A:2B:..."
    std::string hash;    // the signature's digest: sha256, sha512, ...
    bool empty() const { return signer.empty() && key_id.empty() && hash.empty(); }
};

// Where the signature appended to a module lies. The trailer is read by hand, not by OpenSSL.
struct AppendedSignature {
    std::size_t signed_size = 0;  // the module's bytes before the signature: what it signs
    std::string pkcs7;            // the signature (DER)
};

// nullopt when `bytes` do not end with the magic string (an unsigned module); throws Error
// saying why when the trailer after it is malformed (not PKCS#7, a length past the start).
std::optional<AppendedSignature> find_appended_signature(const std::string& bytes);

// A private key and its certificate, loaded and checked once; signs and checks modules.
// Several threads may use one at once.
class ModuleSigner {
public:
    // key_file: a PEM private key (the file may hold the certificate too, as the kernel's
    // signing_key.pem does); an encrypted one is opened with $KBUILD_SIGN_PIN, as sign-file
    // does. cert_file: an X.509 certificate, PEM or DER. Throws Error naming the file and the
    // cause: unreadable, holds no key or certificate, or the key is not the certificate's.
    ModuleSigner(const std::filesystem::path& key_file, const std::filesystem::path& cert_file);
    ~ModuleSigner();
    ModuleSigner(const ModuleSigner&) = delete;
    ModuleSigner& operator=(const ModuleSigner&) = delete;

    // The certificate's signer and key_id (hash empty).
    const ModuleSignature& identity() const { return identity_; }
    // SHA-256 of the certificate (DER): what a build's inputs name.
    const std::string& cert_sha256() const { return cert_sha256_; }
    const std::filesystem::path& cert_file() const { return cert_file_; }

    // Writes `out` (which may be `module`): the module with a signature made with `hash`
    // appended, through a temporary file renamed into place, so that `out` is never half
    // signed. Throws Error naming the module on an unknown hash, a module already signed, or
    // a failure to read, sign or write.
    void sign(const std::filesystem::path& module, const std::string& hash, const std::filesystem::path& out) const;

    // Who signed `module` and with what hash, when it ends with a signature by this certificate
    // that holds over the bytes before it (CMS_verify, detached; the certificate is trusted as
    // given, no chain is built). Else throws Error naming the module and why not ("no signature
    // appended", "... does not hold over the module's bytes", "signed by ..., not by ...").
    ModuleSignature verify(const std::filesystem::path& module) const;

private:
    struct Keys;
    std::unique_ptr<Keys> keys_;
    std::filesystem::path cert_file_;
    ModuleSignature identity_;
    std::string cert_sha256_;
    mutable std::mutex mutex_;  // signing uses the one key
};

}  // namespace kbuild
