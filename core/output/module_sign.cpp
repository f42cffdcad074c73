#include "output/module_sign.h"

#include "kernel/kernel_config.h"
#include "util/strings.h"

#include <kbuild/digest.hpp>
#include <kbuild/error.hpp>

#include <openssl/bio.h>
#include <openssl/cms.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iterator>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

const std::string kMagic = "~Module signature appended~\n";
constexpr std::size_t kInfoSize = 12;  // struct module_signature
constexpr unsigned char kIdPkcs7 = 2;  // PKEY_ID_PKCS7

template <class T, void (*Free)(T*)>
struct Freer {
    void operator()(T* p) const { Free(p); }
};
using BioPtr = std::unique_ptr<BIO, Freer<BIO, BIO_free_all>>;
using CmsPtr = std::unique_ptr<CMS_ContentInfo, Freer<CMS_ContentInfo, CMS_ContentInfo_free>>;
using X509Ptr = std::unique_ptr<X509, Freer<X509, X509_free>>;
using KeyPtr = std::unique_ptr<EVP_PKEY, Freer<EVP_PKEY, EVP_PKEY_free>>;

void free_x509_stack(STACK_OF(X509) * stack) {
    sk_X509_free(stack);
}
using X509StackPtr = std::unique_ptr<STACK_OF(X509), Freer<STACK_OF(X509), free_x509_stack>>;

// OpenSSL's queued errors as one phrase (the last is the most specific), and the queue cleared.
std::string openssl_errors() {
    std::string text;
    while (const unsigned long code = ERR_get_error()) {
        const char* reason = ERR_reason_error_string(code);
        text = reason ? reason : "error " + std::to_string(code);
    }
    return text.empty() ? "unknown OpenSSL error" : text;
}

std::string read_bytes(const fs::path& file, const std::string& what) {
    std::ifstream in(file, std::ios::binary | std::ios::ate);
    if (!in) throw Error(file.string() + ": cannot read the " + what + ": " + errno_text(errno));
    std::string bytes(static_cast<std::size_t>(in.tellg()), '\0');
    in.seekg(0);
    if (!in.read(bytes.data(), static_cast<std::streamsize>(bytes.size())))
        throw Error(file.string() + ": cannot read the " + what);
    return bytes;
}

BioPtr memory_bio(const std::string& bytes) {
    BioPtr bio(BIO_new_mem_buf(bytes.data(), static_cast<int>(bytes.size())));
    if (!bio) throw Error("out of memory (OpenSSL BIO)");
    return bio;
}

std::string lower(std::string text) {
    std::transform(text.begin(), text.end(), text.begin(), [](unsigned char c) { return std::tolower(c); });
    return text;
}

// Bytes as modinfo prints a key id: upper-case hex pairs joined by ':'.
std::string colon_hex(const unsigned char* data, int size) {
    static const char digits[] = "0123456789ABCDEF";
    std::string text;
    for (int i = 0; i < size; ++i) {
        if (i) text += ':';
        text += digits[data[i] >> 4];
        text += digits[data[i] & 15];
    }
    return text;
}

std::string name_entry(const X509_NAME* name, int nid) {
    const int index = X509_NAME_get_index_by_NID(name, nid, -1);
    if (index < 0) return {};
    const ASN1_STRING* data = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(name, index));
    unsigned char* utf8 = nullptr;
    const int size = ASN1_STRING_to_UTF8(&utf8, data);
    if (size < 0) return {};
    std::string text(reinterpret_cast<char*>(utf8), static_cast<std::size_t>(size));
    OPENSSL_free(utf8);
    return text;
}

// A name as the kernel and modinfo call a signer: its CN, else its O, else the whole name.
std::string signer_name(const X509_NAME* name) {
    if (std::string cn = name_entry(name, NID_commonName); !cn.empty()) return cn;
    if (std::string o = name_entry(name, NID_organizationName); !o.empty()) return o;
    char text[256];
    X509_NAME_oneline(name, text, sizeof text);
    return text;
}

// Passes $KBUILD_SIGN_PIN to an encrypted key, as sign-file does; notes that one was asked for.
struct PinRequest {
    bool asked = false;
};
int pin_callback(char* buf, int size, int /*rwflag*/, void* user) {
    static_cast<PinRequest*>(user)->asked = true;
    const char* pin = std::getenv("KBUILD_SIGN_PIN");
    if (pin == nullptr) return -1;
    const int length = static_cast<int>(std::strlen(pin));
    if (length > size) return -1;
    std::memcpy(buf, pin, static_cast<std::size_t>(length));
    return length;
}

void put_be32(std::string& out, std::uint32_t value) {
    for (int shift = 24; shift >= 0; shift -= 8) out += static_cast<char>((value >> shift) & 0xff);
}

std::string temporary_name() {
    static std::atomic<unsigned> counter{0};
    return ".sign-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
}

}  // namespace

std::string module_sig_hash(const fs::path& config) {
    return config_value(config, "CONFIG_MODULE_SIG_HASH");
}

void check_module_sig_hash(const std::string& hash) {
    static const char* const known[] = {"sha1",   "sha224",   "sha256",   "sha384",
                                        "sha512", "sha3-256", "sha3-384", "sha3-512"};
    if (std::find(std::begin(known), std::end(known), hash) == std::end(known))
        throw Error("'" + hash +
                    "' is not a hash the kernel signs modules with (sha1, sha224, sha256, sha384, sha512, "
                    "sha3-256, sha3-384, sha3-512)");
    if (EVP_get_digestbyname(hash.c_str()) == nullptr) throw Error("OpenSSL has no digest '" + hash + "'");
}

std::optional<AppendedSignature> find_appended_signature(const std::string& bytes) {
    if (bytes.size() < kMagic.size() || bytes.compare(bytes.size() - kMagic.size(), kMagic.size(), kMagic) != 0)
        return std::nullopt;
    if (bytes.size() < kMagic.size() + kInfoSize)
        throw Error("the signature trailer is cut short (" + std::to_string(bytes.size()) + " bytes)");
    const std::size_t info_at = bytes.size() - kMagic.size() - kInfoSize;
    const auto* info = reinterpret_cast<const unsigned char*>(bytes.data() + info_at);
    // algo, hash, id_type, signer_len, key_id_len, 3 bytes of padding, sig_len (big-endian).
    if (info[2] != kIdPkcs7)
        throw Error("the appended signature is of type " + std::to_string(info[2]) + ", not PKCS#7 (2)");
    if (info[0] != 0 || info[1] != 0 || info[3] != 0 || info[4] != 0)
        throw Error("the appended PKCS#7 signature's algo, hash, signer_len and key_id_len are not all 0");
    const std::size_t length = (std::size_t{info[8]} << 24) | (std::size_t{info[9]} << 16) |
                               (std::size_t{info[10]} << 8) | std::size_t{info[11]};
    if (length == 0 || length > info_at)
        throw Error("the appended signature's length " + std::to_string(length) + " lies past the module's start");
    AppendedSignature found;
    found.signed_size = info_at - length;
    found.pkcs7 = bytes.substr(found.signed_size, length);
    return found;
}

struct ModuleSigner::Keys {
    KeyPtr key;
    X509Ptr cert;
};

ModuleSigner::ModuleSigner(const fs::path& key_file, const fs::path& cert_file)
    : keys_(std::make_unique<Keys>()), cert_file_(cert_file) {
    ERR_clear_error();
    {
        const std::string text = read_bytes(key_file, "signing key");
        const BioPtr bio = memory_bio(text);
        PinRequest pin;
        keys_->key.reset(PEM_read_bio_PrivateKey(bio.get(), nullptr, pin_callback, &pin));
        if (!keys_->key) {
            const std::string why = openssl_errors();
            if (pin.asked && std::getenv("KBUILD_SIGN_PIN") == nullptr)
                throw Error(key_file.string() +
                            ": the signing key is encrypted: set KBUILD_SIGN_PIN to its passphrase");
            if (pin.asked)
                throw Error(key_file.string() + ": cannot decrypt the signing key with KBUILD_SIGN_PIN (" + why + ")");
            throw Error(key_file.string() + ": no PEM private key in it (" + why + ")");
        }
    }
    {
        const std::string text = read_bytes(cert_file, "certificate");
        const BioPtr bio = memory_bio(text);
        if (text.find("-----BEGIN") != std::string::npos)
            keys_->cert.reset(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
        else
            keys_->cert.reset(d2i_X509_bio(bio.get(), nullptr));
        if (!keys_->cert)
            throw Error(cert_file.string() + ": not an X.509 certificate, PEM or DER (" + openssl_errors() + ")");
    }
    if (X509_check_private_key(keys_->cert.get(), keys_->key.get()) != 1) {
        ERR_clear_error();
        throw Error(key_file.string() + ": the signing key is not the key of the certificate " + cert_file.string());
    }
    identity_.signer = signer_name(X509_get_subject_name(keys_->cert.get()));
    const ASN1_INTEGER* serial = X509_get0_serialNumber(keys_->cert.get());
    identity_.key_id = colon_hex(ASN1_STRING_get0_data(serial), ASN1_STRING_length(serial));
    unsigned char* der = nullptr;
    const int der_size = i2d_X509(keys_->cert.get(), &der);
    if (der_size <= 0) throw Error(cert_file.string() + ": cannot encode the certificate");
    cert_sha256_ = sha256_text(std::string(reinterpret_cast<char*>(der), static_cast<std::size_t>(der_size)));
    OPENSSL_free(der);
}

ModuleSigner::~ModuleSigner() = default;

void ModuleSigner::sign(const fs::path& module, const std::string& hash, const fs::path& out) const {
    const std::string where = module.string() + ": ";
    try {
        check_module_sig_hash(hash);
    } catch (const Error& e) {
        throw Error(where + e.what());
    }
    const std::string bytes = read_bytes(module, "module");
    try {
        if (find_appended_signature(bytes)) throw Error("already signed");
    } catch (const Error& e) {
        throw Error(where + "will not sign it again: " + e.what());
    }

    std::string signature;
    {
        std::lock_guard lock(mutex_);
        ERR_clear_error();
        const EVP_MD* digest = EVP_get_digestbyname(hash.c_str());
        const BioPtr content = memory_bio(bytes);
        // As sign-file: detached, binary, no certificates, no S/MIME capabilities, no signed
        // attributes; the signer named by issuer and serial number.
        const CmsPtr cms(
            CMS_sign(nullptr, nullptr, nullptr, nullptr, CMS_NOCERTS | CMS_PARTIAL | CMS_BINARY | CMS_DETACHED));
        if (!cms ||
            !CMS_add1_signer(cms.get(), keys_->cert.get(), keys_->key.get(), digest,
                             CMS_NOCERTS | CMS_BINARY | CMS_NOSMIMECAP | CMS_NOATTR) ||
            CMS_final(cms.get(), content.get(), nullptr, CMS_NOCERTS | CMS_BINARY) != 1)
            throw Error(where + "cannot sign: " + openssl_errors());
        BioPtr der(BIO_new(BIO_s_mem()));
        if (!der || i2d_CMS_bio(der.get(), cms.get()) != 1)
            throw Error(where + "cannot encode the signature: " + openssl_errors());
        char* data = nullptr;
        const long size = BIO_get_mem_data(der.get(), &data);
        signature.assign(data, static_cast<std::size_t>(size));
    }

    std::string trailer = signature;
    trailer.append("\0\0\x02\0\0\0\0\0", 8);  // algo, hash, id_type PKCS#7, signer_len, key_id_len, pad
    put_be32(trailer, static_cast<std::uint32_t>(signature.size()));
    trailer += kMagic;

    const fs::path temporary = out.string() + temporary_name();
    try {
        std::ofstream file(temporary, std::ios::binary | std::ios::trunc);
        file.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        file.write(trailer.data(), static_cast<std::streamsize>(trailer.size()));
        file.close();
        if (!file) throw Error(temporary.string() + ": cannot write");
        fs::rename(temporary, out);
    } catch (...) {
        std::error_code ec;
        fs::remove(temporary, ec);
        throw;
    }
}

ModuleSignature ModuleSigner::verify(const fs::path& module) const {
    const std::string bytes = read_bytes(module, "module");
    const auto fail = [&](const std::string& why) { return Error(module.string() + ": " + why); };
    std::optional<AppendedSignature> appended;
    try {
        appended = find_appended_signature(bytes);
    } catch (const Error& e) {
        throw fail(e.what());
    }
    if (!appended) throw fail("no signature appended (no \"~Module signature appended~\" at its end)");

    ERR_clear_error();
    const BioPtr der = memory_bio(appended->pkcs7);
    const CmsPtr cms(d2i_CMS_bio(der.get(), nullptr));
    if (!cms) throw fail("the appended signature is not PKCS#7 DER (" + openssl_errors() + ")");
    STACK_OF(CMS_SignerInfo)* infos = CMS_get0_SignerInfos(cms.get());
    if (infos == nullptr || sk_CMS_SignerInfo_num(infos) != 1)
        throw fail("the appended signature has " + std::to_string(infos ? sk_CMS_SignerInfo_num(infos) : 0) +
                   " signers, not one");
    CMS_SignerInfo* info = sk_CMS_SignerInfo_value(infos, 0);
    if (CMS_SignerInfo_cert_cmp(info, keys_->cert.get()) != 0) {
        ASN1_OCTET_STRING* key_id = nullptr;
        X509_NAME* issuer = nullptr;
        ASN1_INTEGER* serial = nullptr;
        std::string who = "another key";
        if (CMS_SignerInfo_get0_signer_id(info, &key_id, &issuer, &serial) == 1 && issuer && serial)
            who = signer_name(issuer) + " (serial " +
                  colon_hex(ASN1_STRING_get0_data(serial), ASN1_STRING_length(serial)) + ")";
        ERR_clear_error();
        throw fail("signed by " + who + ", not by " + identity_.signer + " (serial " + identity_.key_id + ") of " +
                   cert_file_.string());
    }
    X509_ALGOR* digest = nullptr;
    CMS_SignerInfo_get0_algs(info, nullptr, nullptr, &digest, nullptr);
    const ASN1_OBJECT* digest_oid = nullptr;
    if (digest) X509_ALGOR_get0(&digest_oid, nullptr, nullptr, digest);
    const int nid = digest_oid ? OBJ_obj2nid(digest_oid) : NID_undef;
    const std::string hash = nid == NID_undef ? "unknown" : lower(OBJ_nid2sn(nid));

    X509StackPtr certs(sk_X509_new_null());
    if (!certs || !sk_X509_push(certs.get(), keys_->cert.get())) throw fail("out of memory (OpenSSL)");
    const std::string signed_bytes = bytes.substr(0, appended->signed_size);
    const BioPtr content = memory_bio(signed_bytes);
    if (CMS_verify(cms.get(), certs.get(), nullptr, content.get(), nullptr,
                   CMS_BINARY | CMS_NOINTERN | CMS_NO_SIGNER_CERT_VERIFY) != 1)
        throw fail("the " + hash + " signature by " + identity_.signer + " does not hold over the module's " +
                   std::to_string(signed_bytes.size()) + " bytes (" + openssl_errors() + ")");
    ModuleSignature found = identity_;
    found.hash = hash;
    return found;
}

}  // namespace kbuild
