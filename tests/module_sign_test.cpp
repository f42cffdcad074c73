// Module signing (core/output/module_sign) on a real ELF object with a .modinfo, signed with a
// throw-away key the test makes with the openssl CLI; the signature is read back by kmod's
// modinfo and by openssl's own CMS verify over a trailer the test takes apart by hand.
#include "output/module_sign.h"
#include "app/config.h"
#include "output/artifacts.h"
#include "test_util.h"
#include "util/process.h"

#include <kbuild/types.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <functional>

namespace fs = std::filesystem;
using namespace kbuild;

namespace {

const std::string kSigner = "kbuild throw-away signing key";
const std::string kMagic = "~Module signature appended~\n";

std::string trimmed(std::string text) {
    while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
    return text;
}

// A key and its self-signed certificate, as the kernel's x509.genkey would make one.
void make_key(const fs::path& dir, const std::string& name, const std::string& cn = kSigner) {
    const ProcessResult r =
        run_process({"openssl", "req", "-new", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-batch",
                     "-subj", "/O=kbuild tests/CN=" + cn, "-addext", "extendedKeyUsage=codeSigning", "-keyout",
                     (dir / (name + ".key")).string(), "-out", (dir / (name + ".crt")).string()});
    ASSERT_EQ(r.exit_code, 0) << r.err;
}

// An ELF object whose .modinfo is a module's, made by the compiler (as verify_test does).
fs::path make_module(const fs::path& dir) {
    const std::string entries = std::string("version=1.0.0") + '\0' + "license=GPL" + '\0' + "name=signme" + '\0' +
                                "vermagic=6.1.0-50-amd64 SMP preempt mod_unload modversions ";
    std::string array;
    for (char c : entries) array += std::to_string(static_cast<unsigned char>(c)) + ",";
    test::write_file(dir / "signme.c", "__attribute__((section(\".modinfo\"), used)) static const char info[] = {" +
                                           array + "0};\nint signme_init(void) { return 42; }\n");
    const fs::path ko = dir / "signme.ko";
    const ProcessResult cc = run_process({"cc", "-c", (dir / "signme.c").string(), "-o", ko.string()});
    EXPECT_EQ(cc.exit_code, 0) << cc.err;
    return ko;
}

std::string modinfo_field(const fs::path& ko, const std::string& field) {
    const ProcessResult r = run_process({"modinfo", "-F", field, ko.string()});
    EXPECT_EQ(r.exit_code, 0) << r.err;
    return trimmed(r.out);
}

std::string error_of(const std::function<void()>& f) {
    try {
        f();
    } catch (const Error& e) {
        return e.what();
    }
    return "(no error)";
}

class ModuleSign : public ::testing::Test {
protected:
    void SetUp() override {
        make_key(dir.path(), "signing");
        module = make_module(dir.path());
    }
    fs::path key() const { return dir / "signing.key"; }
    fs::path cert() const { return dir / "signing.crt"; }

    test::TempDir dir;
    fs::path module;
};

TEST_F(ModuleSign, ModinfoReadsTheSignerKeyAndHash) {
    const ModuleSigner signer(key(), cert());
    EXPECT_EQ(signer.identity().signer, kSigner);
    const fs::path signed_ko = dir / "out/signme.ko";
    fs::create_directories(signed_ko.parent_path());
    const auto started = std::chrono::steady_clock::now();
    signer.sign(module, "sha512", signed_ko);
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - started).count();
    RecordProperty("sign_ms", std::to_string(ms));

    // kmod reads the PKCS#7 with OpenSSL: the issuer's CN, the serial number, the digest.
    EXPECT_EQ(modinfo_field(signed_ko, "sig_id"), "PKCS#7");
    EXPECT_EQ(modinfo_field(signed_ko, "signer"), kSigner);
    EXPECT_EQ(modinfo_field(signed_ko, "sig_key"), signer.identity().key_id);
    EXPECT_EQ(modinfo_field(signed_ko, "sig_hashalgo"), "sha512");
    EXPECT_EQ(modinfo_field(signed_ko, "vermagic"), "6.1.0-50-amd64 SMP preempt mod_unload modversions");

    // The serial as openssl prints it is the key id, colons aside.
    const ProcessResult serial = run_process({"openssl", "x509", "-noout", "-serial", "-in", cert().string()});
    std::string hex = signer.identity().key_id;
    hex.erase(std::remove(hex.begin(), hex.end(), ':'), hex.end());
    EXPECT_EQ(trimmed(serial.out), "serial=" + hex);

    const ModuleSignature found = signer.verify(signed_ko);
    EXPECT_EQ(found.signer, kSigner);
    EXPECT_EQ(found.key_id, signer.identity().key_id);
    EXPECT_EQ(found.hash, "sha512");
    // Nothing is left beside it.
    EXPECT_EQ(std::distance(fs::directory_iterator(signed_ko.parent_path()), fs::directory_iterator()), 1);
}

TEST_F(ModuleSign, OpensslVerifiesTheTrailerTakenApartByHand) {
    const ModuleSigner signer(key(), cert());
    const std::string original = test::read_file(module);
    signer.sign(module, "sha256", module);  // in place
    const std::string bytes = test::read_file(module);

    // module bytes | PKCS#7 | algo hash id_type signer_len key_id_len pad[3] sig_len(be32) | magic
    ASSERT_GT(bytes.size(), original.size() + 12 + kMagic.size());
    EXPECT_EQ(bytes.substr(bytes.size() - kMagic.size()), kMagic);
    const std::string info = bytes.substr(bytes.size() - kMagic.size() - 12, 12);
    EXPECT_EQ(info.substr(0, 8), std::string("\0\0\x02\0\0\0\0\0", 8));
    const auto u = [&](size_t i) { return static_cast<size_t>(static_cast<unsigned char>(info[i])); };
    const size_t sig_len = u(8) << 24 | u(9) << 16 | u(10) << 8 | u(11);
    ASSERT_EQ(original.size() + sig_len + 12 + kMagic.size(), bytes.size());
    EXPECT_EQ(bytes.substr(0, original.size()), original);
    test::write_file(dir / "module.unsigned", original);
    test::write_file(dir / "sig.der", bytes.substr(original.size(), sig_len));

    const ProcessResult verified =
        run_process({"openssl", "cms", "-verify", "-binary", "-inform", "DER", "-in", (dir / "sig.der").string(),
                     "-content", (dir / "module.unsigned").string(), "-certfile", cert().string(), "-noverify", "-out",
                     (dir / "content.out").string()});
    EXPECT_EQ(verified.exit_code, 0) << verified.err;
    EXPECT_NE(verified.err.find("Verification successful"), std::string::npos) << verified.err;
    EXPECT_EQ(test::read_file(dir / "content.out"), original);

    // What sign-file writes: SignedData, detached, no certificates, no signed attributes, the
    // signer by issuer and serial number.
    const ProcessResult printed =
        run_process({"openssl", "cms", "-cmsout", "-print", "-inform", "DER", "-in", (dir / "sig.der").string()});
    ASSERT_EQ(printed.exit_code, 0) << printed.err;
    const std::string& p = printed.out;
    EXPECT_NE(p.find("contentType: pkcs7-signedData"), std::string::npos) << p;
    EXPECT_NE(p.find("eContent: <ABSENT>"), std::string::npos) << p;
    EXPECT_NE(p.find("certificates:\n      <ABSENT>"), std::string::npos) << p;
    EXPECT_NE(p.find("signedAttrs:\n          <ABSENT>"), std::string::npos) << p;
    EXPECT_NE(p.find("issuerAndSerialNumber"), std::string::npos) << p;
    EXPECT_NE(p.find("CN=" + kSigner), std::string::npos) << p;
    EXPECT_NE(p.find("algorithm: sha256"), std::string::npos) << p;
    EXPECT_NE(p.find("algorithm: rsaEncryption"), std::string::npos) << p;

    // The hand parse and kbuild's agree.
    const auto appended = find_appended_signature(bytes);
    ASSERT_TRUE(appended);
    EXPECT_EQ(appended->signed_size, original.size());
    EXPECT_EQ(appended->pkcs7, bytes.substr(original.size(), sig_len));
}

TEST_F(ModuleSign, AlteredBytesFailTheCheckWithAReason) {
    const ModuleSigner signer(key(), cert());
    signer.sign(module, "sha512", module);
    std::string bytes = test::read_file(module);
    ASSERT_NO_THROW(signer.verify(module));

    std::string altered = bytes;
    altered[100] = static_cast<char>(altered[100] ^ 0x01);  // inside the ELF header's tables
    test::write_file(dir / "altered.ko", altered);
    const std::string why = error_of([&] { signer.verify(dir / "altered.ko"); });
    EXPECT_EQ(why.rfind((dir / "altered.ko").string() + ": the sha512 signature by " + kSigner +
                            " does not hold over the module's " +
                            std::to_string(find_appended_signature(bytes)->signed_size) + " bytes (",
                        0),
              0u)
        << why;

    test::write_file(dir / "cut.ko", bytes.substr(0, bytes.size() - 1));
    for (const char* name : {"cut.ko", "signme.c"})
        EXPECT_EQ(error_of([&] { signer.verify(dir / name); }),
                  (dir / name).string() + ": no signature appended (no \"~Module signature appended~\" at its end)");

    std::string long_length = bytes;
    long_length[long_length.size() - kMagic.size() - 4] = '\x7f';
    test::write_file(dir / "long.ko", long_length);
    EXPECT_NE(error_of([&] { signer.verify(dir / "long.ko"); }).find("lies past the module's start"),
              std::string::npos);

    // Another key's signature names both signers.
    make_key(dir.path(), "other", "another key");
    const ModuleSigner other(dir / "other.key", dir / "other.crt");
    const fs::path unsigned_copy = dir / "copy.ko";
    test::write_file(unsigned_copy, bytes.substr(0, find_appended_signature(bytes)->signed_size));
    other.sign(unsigned_copy, "sha256", unsigned_copy);
    const std::string not_ours = error_of([&] { signer.verify(unsigned_copy); });
    EXPECT_EQ(not_ours, unsigned_copy.string() + ": signed by another key (serial " + other.identity().key_id +
                            "), not by " + kSigner + " (serial " + signer.identity().key_id + ") of " +
                            cert().string());

    // Signing twice would append a second signature the kernel never reads.
    EXPECT_EQ(error_of([&] { signer.sign(module, "sha512", dir / "twice.ko"); }),
              module.string() + ": will not sign it again: already signed");
    EXPECT_FALSE(fs::exists(dir / "twice.ko"));
}

TEST_F(ModuleSign, KeysThatCannotSignAreRefusedNamingTheFile) {
    make_key(dir.path(), "other", "another key");
    EXPECT_EQ(error_of([&] { ModuleSigner(dir / "other.key", cert()); }),
              (dir / "other.key").string() + ": the signing key is not the key of the certificate " + cert().string());
    EXPECT_EQ(error_of([&] { ModuleSigner(dir / "missing.key", cert()); }),
              (dir / "missing.key").string() + ": cannot read the signing key: No such file or directory");
    EXPECT_EQ(
        error_of([&] { ModuleSigner(cert(), cert()); }).rfind(cert().string() + ": no PEM private key in it (", 0), 0u);
    EXPECT_EQ(error_of([&] {
                  ModuleSigner(key(), dir / "signme.c");
              }).rfind((dir / "signme.c").string() + ": not an X.509 certificate, PEM or DER (", 0),
              0u);

    // An encrypted key opens with KBUILD_SIGN_PIN, as sign-file's does.
    const ProcessResult encrypted = run_process({"openssl", "pkey", "-in", key().string(), "-aes256", "-passout",
                                                 "pass:kbuild-pin", "-out", (dir / "encrypted.key").string()});
    ASSERT_EQ(encrypted.exit_code, 0) << encrypted.err;
    ::unsetenv("KBUILD_SIGN_PIN");
    EXPECT_EQ(
        error_of([&] { ModuleSigner(dir / "encrypted.key", cert()); }),
        (dir / "encrypted.key").string() + ": the signing key is encrypted: set KBUILD_SIGN_PIN to its passphrase");
    ::setenv("KBUILD_SIGN_PIN", "kbuild-pin", 1);
    EXPECT_EQ(ModuleSigner(dir / "encrypted.key", cert()).identity().signer, kSigner);
    ::unsetenv("KBUILD_SIGN_PIN");

    // Through the command line: exit 2, one line, before any plugin, crawl or build.
    const ProcessResult r =
        test::run_kbuild({"--plugin-dir", (dir / "no-plugins").string(), "build", "--distro", "debian", "--module-src",
                          dir.path().string(), "--out", (dir / "out").string(), "--sign-key",
                          (dir / "other.key").string(), "--sign-cert", cert().string()});
    EXPECT_EQ(r.exit_code, 2) << r.err;
    EXPECT_NE(r.err.find((dir / "other.key").string() + ": the signing key is not the key of the certificate " +
                         cert().string() + "\n"),
              std::string::npos)
        << r.err;
    EXPECT_EQ(std::count(r.err.begin(), r.err.end(), '\n'), 1) << r.err;
    EXPECT_FALSE(fs::exists(dir / "out"));

    const ProcessResult alone = test::run_kbuild(
        {"build", "--distro", "debian", "--module-src", dir.path().string(), "--sign-key", key().string()});
    EXPECT_EQ(alone.exit_code, 2);
    EXPECT_NE(alone.err.find("--sign-key requires --sign-cert"), std::string::npos) << alone.err;

    // kbuild serve's [serve] table: checked before it listens; relative paths are the file's.
    const std::string modules = "[serve.modules.hello]\npath = \"" + (test::source_dir() / "examples/hello").string() +
                                "\"\nversion = \"1.0.0\"\n";
    test::write_file(dir / "serve.toml", "[serve]\nsign_key = \"other.key\"\nsign_cert = \"signing.crt\"\n" + modules);
    const ProcessResult serve =
        test::run_kbuild({"--config", (dir / "serve.toml").string(), "serve", "--out", (dir / "serve-out").string()});
    EXPECT_EQ(serve.exit_code, 2);
    EXPECT_NE(serve.err.find((dir / "other.key").string() + ": the signing key is not the key of the certificate " +
                             cert().string()),
              std::string::npos)
        << serve.err;
    test::write_file(dir / "half.toml", "[serve]\nsign_key = \"signing.key\"\n" + modules);
    const ProcessResult half =
        test::run_kbuild({"--config", (dir / "half.toml").string(), "serve", "--out", (dir / "serve-out").string()});
    EXPECT_EQ(half.exit_code, 2);
    EXPECT_NE(half.err.find("serve: sign_key and sign_cert (--sign-key, --sign-cert) go together"), std::string::npos)
        << half.err;
}

TEST_F(ModuleSign, KeyAndCertificateInOneFileAndADerCertificate) {
    // The kernel's signing_key.pem holds both; its signing_key.x509 is DER.
    test::write_file(dir / "signing_key.pem", test::read_file(cert()) + test::read_file(key()));
    const ProcessResult der = run_process(
        {"openssl", "x509", "-in", cert().string(), "-outform", "DER", "-out", (dir / "signing_key.x509").string()});
    ASSERT_EQ(der.exit_code, 0) << der.err;
    const ModuleSigner both(dir / "signing_key.pem", dir / "signing_key.pem");
    const ModuleSigner from_der(dir / "signing_key.pem", dir / "signing_key.x509");
    EXPECT_EQ(both.cert_sha256(), from_der.cert_sha256());
    EXPECT_EQ(both.identity().key_id, from_der.identity().key_id);
    both.sign(module, "sha384", module);
    EXPECT_EQ(from_der.verify(module).hash, "sha384");
    EXPECT_EQ(modinfo_field(module, "sig_hashalgo"), "sha384");
}

TEST(ModuleSigHash, FromTheKernelsConfig) {
    test::TempDir dir;
    test::write_file(dir / "debian.config",
                     "CONFIG_MODULE_SIG=y\n# CONFIG_MODULE_SIG_SHA512 is not set\n"
                     "CONFIG_MODULE_SIG_HASH=\"sha256\"\nCONFIG_MODULE_SIG_KEY=\"certs/x\"\n");
    EXPECT_EQ(module_sig_hash(dir / "debian.config"), "sha256");
    test::write_file(dir / "unsigned.config", "# CONFIG_MODULE_SIG is not set\nCONFIG_MODULES=y\n");
    EXPECT_EQ(module_sig_hash(dir / "unsigned.config"), "");
    EXPECT_EQ(std::string(kDefaultModuleSigHash), "sha512");
    EXPECT_EQ(error_of([&] { module_sig_hash(dir / "none.config"); }),
              (dir / "none.config").string() + ": cannot read the kernel's config");

    for (const char* hash : {"sha1", "sha224", "sha256", "sha384", "sha512", "sha3-256", "sha3-384", "sha3-512"})
        EXPECT_NO_THROW(check_module_sig_hash(hash)) << hash;
    EXPECT_EQ(error_of([&] { check_module_sig_hash("md5"); }),
              "'md5' is not a hash the kernel signs modules with (sha1, sha224, "
              "sha256, sha384, sha512, sha3-256, sha3-384, sha3-512)");
}

TEST(ModuleSigIndex, ASignatureIsRecordedOnlyWhenThereIsOne) {
    ArtifactRecord plain{"m.ko", "abc", "6.1.0 SMP"};
    EXPECT_EQ(Json(plain).dump(), R"({"path":"m.ko","sha256":"abc","vermagic":"6.1.0 SMP"})");
    ArtifactRecord signed_record = plain;
    signed_record.signature = {"kbuild", "1A:2B", "sha512"};
    const Json j = signed_record;
    EXPECT_EQ(j["signature"], (Json{{"signer", "kbuild"}, {"key_id", "1A:2B"}, {"hash", "sha512"}}));
    const auto back = j.get<ArtifactRecord>();
    EXPECT_EQ(back.signature.signer, "kbuild");
    EXPECT_EQ(back.signature.hash, "sha512");
    EXPECT_TRUE(Json(plain).get<ArtifactRecord>().signature.empty());
}

TEST(ModuleSigConfig, TheSignTableNamesBothFiles) {
    test::TempDir dir;
    test::write_file(dir / "config.toml",
                     "[debian]\nmirror = [\"http://mirror.invalid/debian\"]\n\n"
                     "[sign]\nkey = \"keys/signing_key.pem\"\ncert = \"/etc/kbuild/cert.der\"\n");
    const auto sign = read_sign_config(dir / "config.toml");
    ASSERT_TRUE(sign);
    EXPECT_EQ(sign->key, (dir / "keys/signing_key.pem").string());
    EXPECT_EQ(sign->cert, "/etc/kbuild/cert.der");

    test::write_file(dir / "none.toml", "[debian]\nmirror = [\"http://mirror.invalid/debian\"]\n");
    EXPECT_FALSE(read_sign_config(dir / "none.toml"));
    test::write_file(dir / "half.toml", "[sign]\nkey = \"k.pem\"\n");
    EXPECT_EQ(error_of([&] { read_sign_config(dir / "half.toml"); }),
              (dir / "half.toml").string() + ": [sign] names key without cert: both, or neither");
    test::write_file(dir / "typo.toml", "[sign]\nkey = \"k.pem\"\ncertificate = \"c.pem\"\n");
    EXPECT_EQ(error_of([&] { read_sign_config(dir / "typo.toml"); }),
              (dir / "typo.toml").string() + ":3:1: [sign] certificate: unknown key (key and cert are known)");
    test::write_file(dir / "broken.toml", "[sign]\nkey = \"k.pem\n");
    EXPECT_EQ(error_of([&] { read_sign_config(dir / "broken.toml"); }).rfind((dir / "broken.toml").string() + ":2:", 0),
              0u);
}

}  // namespace
