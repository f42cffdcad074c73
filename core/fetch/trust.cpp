#include "fetch/trust.h"

#include "util/process.h"
#include "util/strings.h"

#include <kbuild/digest.hpp>
#include <kbuild/files.hpp>

#include <Poco/Base64Decoder.h>
#include <Poco/Base64Encoder.h>
#include <spdlog/spdlog.h>

#include <unistd.h>
#include <algorithm>
#include <atomic>
#include <cstdint>
#include <fstream>
#include <sstream>

namespace fs = std::filesystem;

namespace kbuild {
namespace {

std::vector<std::string> words_of(const std::string& line) {
    std::istringstream in(line);
    std::vector<std::string> words;
    for (std::string w; in >> w;) words.push_back(w);
    return words;
}

bool has_prefix(const std::string& text, const std::string& prefix) {
    return text.compare(0, prefix.size(), prefix) == 0;
}

std::string first_line(const std::string& text) {
    const std::string t = trim(text);
    return t.substr(0, t.find('\n'));
}

// OpenPGP armour's checksum (RFC 4880, 6.1).
std::uint32_t crc24(const std::string& bytes) {
    std::uint32_t crc = 0xB704CE;
    for (const unsigned char byte : bytes) {
        crc ^= static_cast<std::uint32_t>(byte) << 16;
        for (int i = 0; i < 8; ++i) {
            crc <<= 1;
            if (crc & 0x1000000) crc ^= 0x1864CFB;
        }
    }
    return crc & 0xFFFFFF;
}

std::string base64(const std::string& bytes) {
    std::ostringstream out;
    Poco::Base64Encoder encoder(out);
    encoder.rdbuf()->setLineLength(64);
    encoder << bytes;
    encoder.close();
    return out.str();
}

// Whether `url` lies under the mirror `prefix` ("http://m/debian" covers "http://m/debian/dists/...").
bool under(const std::string& url, std::string prefix) {
    while (!prefix.empty() && prefix.back() == '/') prefix.pop_back();
    return !prefix.empty() && has_prefix(url, prefix) && (url.size() == prefix.size() || url[prefix.size()] == '/');
}

// A file written whole or not at all: a temporary beside it, renamed into place.
void write_atomically(const fs::path& path, const std::string& bytes) {
    static std::atomic<unsigned> counter{0};
    const fs::path tmp = path.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    {
        std::ofstream out(tmp, std::ios::binary);
        out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
        if (!out.flush()) throw Error(tmp.string() + ": cannot write");
    }
    fs::rename(tmp, path);
}

// The signed text of a clearsigned message, read without checking it: only for a source the
// user marked insecure. Armour headers end at the first blank line; "- " is dash-escaping.
std::string clearsigned_text(const std::string& text) {
    std::istringstream in(text);
    std::string line, body;
    bool begun = false, in_headers = true;
    while (std::getline(in, line)) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        if (!begun) {
            begun = has_prefix(line, "-----BEGIN PGP SIGNED MESSAGE-----");
            continue;
        }
        if (in_headers) {
            in_headers = line.find_first_not_of(" \t") != std::string::npos;
            continue;
        }
        if (has_prefix(line, "-----BEGIN PGP SIGNATURE-----")) break;
        if (has_prefix(line, "- ")) line.erase(0, 2);
        body += line + '\n';
    }
    return begun ? body : text;
}

// A keyring's bytes; one that cannot be read says what to give instead (`hint`).
std::string keyring_bytes(const fs::path& keyring, const std::string& hint) {
    try {
        return read_file(keyring.string());
    } catch (const Error&) {
        throw Error(keyring.string() + ": keyring cannot be read (give --keyring FILE, or " + hint + ")");
    }
}

}  // namespace

namespace {
// The key whose signature gpgv took; else Error naming `url` and why: the status's reason (with
// gpgv's exit and words when it wrote no status at all: killed, or a keyring it cannot read), or
// gpgv's words when it took the signature but wrote no output.
std::string gpgv_signer(const ProcessResult& run, const std::string& url, bool wrote_output) {
    const std::string said = one_line(run.err);
    std::string signer;
    try {
        signer = read_gpgv_status(run.out);
    } catch (const Error& e) {
        std::string why = e.what();
        if (why == "no valid signature" && run.out.empty())
            why += " (gpgv " + (run.timed_out ? std::string("timed out") : "exited " + std::to_string(run.exit_code)) +
                   (said.empty() ? "" : ": " + said) + ")";
        throw Error(url + ": " + why);
    }
    if (!wrote_output) throw Error(url + ": gpgv failed: " + said);
    return signer;
}
}  // namespace

std::string read_gpgv_status(const std::string& status) {
    std::istringstream in(status);
    std::string good, bad, first_problem;
    for (std::string line; std::getline(in, line);) {
        const std::vector<std::string> w = words_of(line);
        if (w.size() < 2 || w[0] != "[GNUPG:]") continue;
        const std::string& what = w[1];
        const std::string key = w.size() > 2 ? "0x" + w[2] : "";
        std::string problem;
        if (what == "VALIDSIG" && w.size() > 9) {
            // Field 9 is the digest algorithm: MD5 (1), SHA-1 (2) and RIPEMD-160 (3) are refused,
            // as apt refuses them.
            const std::string& digest = w[9];
            if (digest == "1" || digest == "2" || digest == "3")
                problem = "signature by key 0x" + w[2] + " uses a weak digest (algorithm " + digest + ")";
            else if (good.empty())
                good = w[2];
        } else if (what == "BADSIG") {
            bad = "BAD signature by key " + key;
        } else if (what == "NO_PUBKEY") {
            problem = "signature by unknown key " + key;
        } else if (what == "EXPKEYSIG") {
            problem = "signature by expired key " + key;
        } else if (what == "REVKEYSIG") {
            problem = "signature by revoked key " + key;
        } else if (what == "EXPSIG") {
            problem = "expired signature by key " + key;
        } else if (what == "NODATA") {
            problem = "no signature";
        } else if (what == "ERRSIG" && w.size() > 7 && w[7] != "9") {
            problem = "signature by key " + key + " cannot be checked (gpgv error " + w[7] + ")";
        }
        if (!problem.empty() && first_problem.empty()) first_problem = problem;
    }
    if (!bad.empty()) throw Error(bad);
    if (!good.empty()) return good;
    throw Error(first_problem.empty() ? "no valid signature" : first_problem);
}

std::string dearmored_keyring(const std::string& bytes, const std::string& name) {
    const std::string begin = "-----BEGIN PGP PUBLIC KEY BLOCK-----";
    const std::string end = "-----END PGP PUBLIC KEY BLOCK-----";
    if (bytes.find(begin) == std::string::npos) return bytes;
    std::string binary;
    for (std::size_t pos = bytes.find(begin); pos != std::string::npos; pos = bytes.find(begin, pos)) {
        const std::size_t stop = bytes.find(end, pos);
        if (stop == std::string::npos) throw Error(name + ": armoured key block has no END line");
        std::istringstream block(bytes.substr(pos + begin.size(), stop - pos - begin.size()));
        // Armour headers ("Comment: ...") end at the first blank line; the base64 ends at the
        // "=XXXX" checksum line.
        std::string line, base64;
        bool in_headers = true;
        std::getline(block, line);  // the rest of the BEGIN line
        while (std::getline(block, line)) {
            if (!line.empty() && line.back() == '\r') line.pop_back();
            const bool blank = line.find_first_not_of(" \t") == std::string::npos;
            if (in_headers) {
                if (blank)
                    in_headers = false;
                else if (line.find(':') == std::string::npos)
                    in_headers = false, base64 += line;
                continue;
            }
            if (blank) continue;
            if (line[0] == '=') break;
            base64 += line;
        }
        std::istringstream encoded(base64);
        Poco::Base64Decoder decoder(encoded);
        std::string decoded((std::istreambuf_iterator<char>(decoder)), std::istreambuf_iterator<char>());
        if (decoded.empty()) throw Error(name + ": armoured key block holds no key");
        binary += decoded;
        pos = stop + end.size();
    }
    return binary;
}

std::string read_rpmkeys_output(const std::string& output) {
    // After the file's name, one indented line per check:
    //   "    Header V4 RSA/SHA256 Signature, key ID fd431d51: OK"
    //   "    Payload SHA256 digest: BAD (Expected ... != ...)"
    std::istringstream in(output);
    std::vector<std::string> signers;
    std::string bad_signature, bad_digest, problem;
    bool signed_at_all = false;
    for (std::string line; std::getline(in, line);) {
        if (line.empty() || (line[0] != ' ' && line[0] != '\t')) continue;
        const size_t colon = line.rfind(": ");
        if (colon == std::string::npos) continue;
        const std::string what = trim(line.substr(0, colon));
        const std::vector<std::string> status = words_of(line.substr(colon + 2));
        const std::string state = status.empty() ? "" : status[0];
        const size_t id_at = what.find("key ID ");
        if (what.find("Signature") == std::string::npos && id_at == std::string::npos) {
            if (state != "OK" && bad_digest.empty()) bad_digest = "BAD " + what;
            continue;
        }
        signed_at_all = true;
        const std::string key = id_at == std::string::npos ? "?" : trim(what.substr(id_at + 7));
        if (state == "OK") {
            if (std::find(signers.begin(), signers.end(), key) == signers.end()) signers.push_back(key);
        } else if (state == "BAD") {
            bad_signature = "BAD rpm signature by key ID " + key;
        } else if (problem.empty()) {
            problem = state == "NOKEY"        ? "rpm signature by unknown key ID " + key
                      : state == "NOTTRUSTED" ? "rpm signature by untrusted key ID " + key + " (expired or revoked)"
                                              : "rpm signature by key ID " + key + " cannot be checked (" + state + ")";
        }
    }
    if (!bad_signature.empty()) throw Error(bad_signature);
    if (!bad_digest.empty()) throw Error(bad_digest);
    if (!problem.empty()) throw Error(problem);
    if (!signed_at_all || signers.empty()) throw Error("not signed");
    std::string by;
    for (const auto& s : signers) by += (by.empty() ? "" : ",") + s;
    return by;
}

std::string armoured_keyring(const std::string& bytes) {
    if (bytes.find("-----BEGIN PGP PUBLIC KEY BLOCK-----") != std::string::npos) return bytes;
    const std::uint32_t crc = crc24(bytes);
    const std::string sum{static_cast<char>(crc >> 16), static_cast<char>((crc >> 8) & 0xFF),
                          static_cast<char>(crc & 0xFF)};
    std::string text = "-----BEGIN PGP PUBLIC KEY BLOCK-----\n\n" + base64(bytes);
    if (text.back() != '\n') text += '\n';
    return text + "=" + base64(sum) + "\n-----END PGP PUBLIC KEY BLOCK-----\n";
}

Trust::Trust(TrustPolicy policy, fs::path cache_dir) : policy_(std::move(policy)), dir_(cache_dir / "trust") {}

std::vector<fs::path> Trust::keyrings_for(const std::string& url, const std::string& distro) const {
    std::vector<fs::path> found;
    for (const auto& [prefix, keyring] : policy_.mirror_keyrings)
        if (under(url, prefix)) found.push_back(keyring);
    if (!found.empty()) return found;
    const auto it = policy_.distro_keyrings.find(distro);
    return it == policy_.distro_keyrings.end() ? found : it->second;
}

// gpgv reads binary keyrings only: an armoured one is dearmored once into the cache, named by
// its sha256.
fs::path Trust::usable_keyring(const fs::path& keyring) {
    const std::string bytes = keyring_bytes(keyring, "install the distro's archive keyring package");
    const std::string binary = dearmored_keyring(bytes, keyring.string());
    if (binary.size() == bytes.size()) return keyring;
    const fs::path copy = dir_ / "keyrings" / (sha256_text(bytes) + ".gpg");
    if (!fs::exists(copy)) {
        fs::create_directories(copy.parent_path());
        write_atomically(copy, binary);
    }
    return copy;
}

Verified Trust::unchecked(const VerifyRequest& request, const std::string& reason, bool warn) {
    {
        std::lock_guard lock(mutex_);
        if (warned_.insert(request.url).second) {
            unverified_.push_back({request.url, reason, request.package});
            if (warn)
                spdlog::warn("{}: used without checking its signature ({})", request.url, reason);
            else
                spdlog::debug("{}: used without checking its signature ({})", request.url, reason);
        }
    }
    Verified verified{request.file, "", reason};
    if (request.inline_signed) {
        fs::create_directories(dir_ / "signed");
        const fs::path text = dir_ / "signed" / (sha256_file(request.file) + ".unchecked.txt");
        write_atomically(text, clearsigned_text(read_file(request.file)));
        verified.path = text.string();
    }
    return verified;
}

Verified Trust::verify(const VerifyRequest& request, const std::string& distro) {
    if (request.kind != "openpgp" && request.kind != "rpm")
        throw Error(request.url + ": verify: unknown kind '" + request.kind + "' (openpgp or rpm)");
    for (const auto& prefix : policy_.insecure_mirrors)
        if (under(request.url, prefix)) return unchecked(request, "insecure mirror " + prefix, true);
    if (policy_.insecure_distros.count(distro)) return unchecked(request, "verify = false for " + distro, true);
    const std::vector<fs::path> keyrings = keyrings_for(request.url, distro);
    if (keyrings.empty()) {
        if (!request.required) return unchecked(request, "no key configured for " + distro, false);
        throw Error(request.url + ": no keyring for " + (distro.empty() ? "this source" : distro) +
                    " to check it with (give --keyring FILE, or keyring in the config file)");
    }
    if (request.kind == "rpm") return verify_rpm(request, keyrings);
    if (!request.inline_signed && request.signature.empty()) {
        // An rpm repository's metadata is signed by few distributions; its packages are checked
        // one by one instead.
        if (request.signature_optional) return unchecked(request, "no signature published", false);
        throw Error(request.url + ": no signature");
    }

    fs::create_directories(dir_ / "signed");
    // gpgv reads no keyring of its own: an empty home keeps a user's trustedkeys.kbx out.
    const fs::path home = dir_ / "gnupg-home";
    fs::create_directories(home);
    fs::permissions(home, fs::perms::owner_all, fs::perm_options::replace);
    std::vector<std::string> argv = {"gpgv", "--homedir", home.string(), "--status-fd", "1"};
    for (const auto& keyring : keyrings) argv.insert(argv.end(), {"--keyring", usable_keyring(keyring).string()});
    fs::path text;
    if (request.inline_signed) {
        static std::atomic<unsigned> counter{0};
        text = dir_ / "signed" / (sha256_file(request.file) + ".txt");
        const fs::path tmp = text.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
        argv.insert(argv.end(), {"--output", tmp.string(), request.file});
        const ProcessResult run = run_process(argv);
        // gpgv exits non-zero when one of several signatures is by a key it lacks; one good
        // signature and no bad one is enough, as for apt.
        std::string signed_by;
        try {
            signed_by = gpgv_signer(run, request.url, fs::exists(tmp));
        } catch (const Error&) {
            std::error_code ec;
            fs::remove(tmp, ec);
            throw;
        }
        fs::rename(tmp, text);
        return {text.string(), signed_by, ""};
    }
    argv.insert(argv.end(), {request.signature, request.file});
    const ProcessResult run = run_process(argv);
    return {request.file, gpgv_signer(run, request.url, true), ""};
}

std::vector<UnverifiedSource> Trust::unverified() const {
    std::lock_guard lock(mutex_);
    return unverified_;
}

void Trust::note_unverified(const std::vector<UnverifiedSource>& sources) {
    std::lock_guard lock(mutex_);
    for (const auto& source : sources)
        if (warned_.insert(source.url).second) unverified_.push_back(source);
}

std::string Trust::fingerprint(const std::string& distro) const {
    auto content = [](const fs::path& keyring) {
        try {
            return sha256_text(read_file(keyring.string()));
        } catch (const Error&) {
            return std::string("unreadable");
        }
    };
    std::string text;
    if (const auto it = policy_.distro_keyrings.find(distro); it != policy_.distro_keyrings.end())
        for (const auto& keyring : it->second) text += "keyring " + content(keyring) + "\n";
    for (const auto& [prefix, keyring] : policy_.mirror_keyrings)
        text += "mirror-keyring " + prefix + " " + content(keyring) + "\n";
    for (const auto& prefix : policy_.insecure_mirrors) text += "insecure-mirror " + prefix + "\n";
    if (policy_.insecure_distros.count(distro)) text += "verify = false\n";
    return text.empty() ? "" : sha256_text(text);
}

// rpmkeys reads the user's ~/.rpmmacros and speaks the user's language: neither, here.
static std::vector<std::string> rpm_environment(const fs::path& home) {
    return {"HOME=" + home.string(), "LC_ALL=C", "LANGUAGE="};
}

fs::path Trust::rpm_database(const std::vector<fs::path>& keyrings) {
    std::vector<std::string> keys;
    std::string id;
    for (const auto& keyring : keyrings) {
        const std::string bytes = keyring_bytes(keyring, "keyring in the config file: the distro's RPM-GPG-KEY file");
        keys.push_back(armoured_keyring(bytes));
        id += sha256_text(bytes) + "\n";
    }
    const fs::path db = dir_ / "rpmdb" / sha256_text(id);
    std::lock_guard lock(rpm_mutex_);
    if (fs::is_directory(db)) return db;
    // Made under a temporary name, renamed when every key is in: a half-made database is never
    // used, by this process or another sharing the cache.
    static std::atomic<unsigned> counter{0};
    const fs::path tmp = db.string() + ".tmp-" + std::to_string(::getpid()) + "-" + std::to_string(counter++);
    const fs::path home = dir_ / "rpm-home";
    fs::create_directories(tmp);
    fs::create_directories(home);
    ProcessOptions options;
    options.env = rpm_environment(home);
    try {
        for (size_t i = 0; i < keys.size(); ++i) {
            const fs::path key = tmp / ("key-" + std::to_string(i) + ".asc");
            write_atomically(key, keys[i]);
            ProcessResult run;
            try {
                run = run_process({"rpmkeys", "--dbpath", tmp.string(), "--import", key.string()}, options);
            } catch (const Error& e) {
                throw Error(std::string(e.what()) + " (rpmkeys checks rpm packages' signatures: apt-get install rpm)");
            }
            if (run.exit_code != 0)
                throw Error(keyrings[i].string() +
                            ": rpmkeys cannot import its keys: " + first_line(run.err + run.out));
            fs::remove(key);
        }
        std::error_code ec;
        fs::rename(tmp, db, ec);
        if (ec) {  // another process made it first
            fs::remove_all(tmp, ec);
            if (!fs::is_directory(db)) throw Error(db.string() + ": cannot create the rpm key database");
        }
    } catch (...) {
        std::error_code ec;
        fs::remove_all(tmp, ec);
        throw;
    }
    return db;
}

Verified Trust::verify_rpm(const VerifyRequest& request, const std::vector<fs::path>& keyrings) {
    const fs::path db = rpm_database(keyrings);
    ProcessOptions options;
    options.env = rpm_environment(dir_ / "rpm-home");
    ProcessResult run;
    try {
        run = run_process({"rpmkeys", "--dbpath", db.string(), "--checksig", "-v", request.file}, options);
    } catch (const Error& e) {
        throw Error(request.url + ": its signature cannot be checked: " + e.what() +
                    " (rpmkeys checks rpm packages' signatures: apt-get install rpm)");
    }
    // Each check is an indented line; with none, rpmkeys could not read the package.
    const bool read = run.out.find("\n ") != std::string::npos || run.out.find("\n\t") != std::string::npos;
    if (!read) throw Error(request.url + ": rpmkeys cannot read it: " + first_line(run.err + run.out));
    std::string signed_by;
    try {
        signed_by = read_rpmkeys_output(run.out);
    } catch (const Error& e) {
        throw Error(request.url + ": " + e.what());
    }
    if (run.exit_code != 0) throw Error(request.url + ": rpmkeys --checksig failed: " + first_line(run.err + run.out));
    return {request.file, signed_by, ""};
}

}  // namespace kbuild
