#include "output/artifacts.h"

#include <spdlog/spdlog.h>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <fstream>
#include <iterator>

namespace fs = std::filesystem;

namespace kbuild {

namespace {

const std::vector<std::pair<std::string, std::string>>& presets() {
    static const std::vector<std::pair<std::string, std::string>> table = {
        // sysdig's probe-builder and probe loader name the machine as `uname -m` does (ARCH=$(uname -m)).
        {"probe-builder", "{module}-{module_version}-{machine}-{kernelrelease}-{config_md5}.ko"},
        // Falco's loader asks <repository>/<driver version>/<uname -m>/<file> (falcoctl's
        // driver distro code), not Debian's name of the architecture.
        {"falco", "{module_version}/{machine}/falco_{target}_{kernelrelease}_{kernelversion}.ko"},
        {"collector", "{module_version}/collector-{kernelrelease}.ko.gz"},
        // The build service's GET path, whose architecture is canonical (x86_64, aarch64).
        {"service",
         "v1/module/{target}/{machine}/{module_version}/{kernelrelease}/{kernelversion}/"
         "{config_sha256}/{module}.ko"},
    };
    return table;
}

const std::string* field(const NamingFields& f, const std::string& name) {
    const std::pair<const char*, const std::string*> fields[] = {{"module", &f.module},
                                                                 {"module_version", &f.module_version},
                                                                 {"arch", &f.arch},
                                                                 {"kernelrelease", &f.kernelrelease},
                                                                 {"kernelversion", &f.kernelversion},
                                                                 {"config_md5", &f.config_md5},
                                                                 {"config_sha256", &f.config_sha256},
                                                                 {"target", &f.target},
                                                                 {"distro", &f.distro},
                                                                 {"variant", &f.variant},
                                                                 {"machine", &f.machine}};
    for (const auto& [key, value] : fields)
        if (name == key) return value;
    return nullptr;
}

// Renders `naming`; with `check`, only validates (fields hold their own names).
std::string render(const std::string& naming, const NamingFields& fields, bool check) {
    std::string out;
    for (size_t i = 0; i < naming.size(); ++i) {
        if (naming[i] != '{') {
            if (naming[i] == '}') throw Error("naming template " + naming + ": a '}' with no '{'");
            out += naming[i];
            continue;
        }
        const size_t close = naming.find('}', i);
        if (close == std::string::npos) throw Error("naming template " + naming + ": a '{' with no '}'");
        const std::string name = naming.substr(i + 1, close - i - 1);
        const std::string* value = field(fields, name);
        if (value == nullptr)
            throw Error("naming template " + naming + ": no field {" + name +
                        "} (fields: module, module_version, arch, kernelrelease, kernelversion, config_md5, "
                        "config_sha256, target, distro, variant, machine)");
        std::string text = check ? name : *value;
        for (char& c : text)
            if (c == '/' || c == '\0') c = '_';
        out += text;
        i = close;
    }
    if (out.empty() || out.front() == '/') throw Error("naming template " + naming + ": not a relative path");
    for (size_t start = 0; start <= out.size();) {
        const size_t slash = std::min(out.find('/', start), out.size());
        const std::string part = out.substr(start, slash - start);
        if (part.empty() || part == "." || part == "..")
            throw Error("naming template " + naming + ": the path " + out + " has an empty, '.' or '..' part");
        start = slash + 1;
    }
    return out;
}

}  // namespace

std::string machine_of(const std::string& arch) {
    if (arch == "amd64") return "x86_64";
    if (arch == "arm64") return "aarch64";
    return arch;
}

std::string naming_preset(const std::string& name) {
    for (const auto& [key, naming] : presets())
        if (key == name) return naming;
    return "";
}

std::vector<std::string> naming_presets() {
    std::vector<std::string> names;
    for (const auto& entry : presets()) names.push_back(entry.first);
    return names;
}

void check_naming_template(const std::string& naming) {
    render(naming, {}, /*check=*/true);
}

std::string artifact_name(const std::string& naming, const NamingFields& fields) {
    return render(naming, fields, /*check=*/false);
}

namespace {
constexpr std::pair<TargetStatus, const char*> kStatusWords[] = {
    {TargetStatus::queued, "queued"}, {TargetStatus::building, "building"},
    {TargetStatus::built, "built"},   {TargetStatus::skipped, "skipped"},
    {TargetStatus::failed, "failed"}, {TargetStatus::unavailable, "unavailable"},
};
}  // namespace

const char* to_string(TargetStatus status) {
    for (const auto& [s, word] : kStatusWords)
        if (s == status) return word;
    return "?";
}

std::optional<TargetStatus> target_status(std::string_view text) {
    for (const auto& [s, word] : kStatusWords)
        if (text == word) return s;
    return std::nullopt;
}

void to_json(Json& j, TargetStatus status) {
    j = to_string(status);
}

void from_json(const Json& j, TargetStatus& status) {
    const std::string text = j.get<std::string>();
    const auto known = target_status(text);
    if (!known) throw Error("unknown status '" + text + "'");
    status = *known;
}

namespace {

fs::path journal_of(const fs::path& index) {
    return index.string() + ".journal";
}

// The records of an index's journal, in the order they were put. Its last line may be torn
// by a run killed while writing it (no newline, or not JSON): that line is left out, with a
// warning. Any other line that is not a record is an error naming the file and the line.
std::vector<TargetRecord> read_journal(const fs::path& journal) {
    std::ifstream in(journal, std::ios::binary);
    if (!in) throw Error(journal.string() + ": cannot read");
    const std::string text{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
    std::vector<TargetRecord> records;
    size_t number = 0;
    for (size_t start = 0; start < text.size();) {
        const size_t end = text.find('\n', start);
        ++number;
        const bool last = end == std::string::npos || end + 1 == text.size();
        try {
            if (end == std::string::npos) throw Error("no newline");
            records.push_back(Json::parse(text.substr(start, end - start)).get<TargetRecord>());
        } catch (const std::exception& e) {
            if (!last)
                throw Error(journal.string() + ": line " + std::to_string(number) +
                            ": not a kbuild index record: " + e.what());
            spdlog::warn("{}: line {} is torn (a run was killed while writing it): left out", journal.string(), number);
        }
        start = end == std::string::npos ? text.size() : end + 1;
    }
    return records;
}

}  // namespace

std::vector<TargetRecord> read_index(const fs::path& file) {
    std::ifstream in(file);
    if (!in) throw Error(file.string() + ": cannot read");
    const Json doc = Json::parse(in, nullptr, /*allow_exceptions=*/false);
    if (!doc.is_object() || !doc.contains("targets") || !doc["targets"].is_array())
        throw Error(file.string() + ": not a kbuild index");
    std::vector<TargetRecord> records;
    try {
        records = doc["targets"].get<std::vector<TargetRecord>>();
    } catch (const Json::exception& e) {
        throw Error(file.string() + ": not a kbuild index: " + e.what());
    }
    if (!fs::exists(journal_of(file))) return records;
    // The journal's records are newer: a target's last one wins.
    std::map<TargetKey, TargetRecord> latest;
    for (auto& record : records) latest.insert_or_assign(TargetKey(target_key(record)), std::move(record));
    for (auto& record : read_journal(journal_of(file)))
        latest.insert_or_assign(TargetKey(target_key(record)), std::move(record));
    records.clear();
    for (auto& [key, record] : latest) records.push_back(std::move(record));
    return records;
}

Index::Index(fs::path out_dir)
    : out_dir_(std::move(out_dir)), path_(out_dir_ / "index.json"), journal_path_(journal_of(path_)) {
    if (!fs::exists(path_)) {
        compact_next_ = true;
        return;
    }
    try {
        for (const auto& record : read_index(path_)) insert_locked(record);
    } catch (const Error& e) {
        throw Error(std::string(e.what()) + " (move it away to start a new one)");
    }
    // A killed run's journal, replayed above: folded into index.json now.
    if (fs::exists(journal_path_)) compact_locked();
}

Index::~Index() {
    try {
        flush();
    } catch (const std::exception& e) {
        spdlog::error("{} (the next run reads {})", e.what(), journal_path_.string());
    }
    if (journal_fd_ >= 0) ::close(journal_fd_);
}

std::optional<TargetRecord> Index::find(const TargetRecord& target) const {
    std::lock_guard lock(mutex_);
    const auto it = records_.find(target_key(target));
    if (it == records_.end()) return std::nullopt;
    return it->second;
}

std::vector<TargetRecord> Index::holders(const std::string& artifact_path) const {
    std::lock_guard lock(mutex_);
    std::vector<TargetRecord> found;
    if (const auto it = holders_.find(artifact_path); it != holders_.end())
        for (const auto& key : it->second) found.push_back(records_.find(key)->second);
    return found;
}

void Index::put(const TargetRecord& record) {
    std::lock_guard lock(mutex_);
    insert_locked(record);
    // A rewrite of n records once per n/4 puts: O(1) a put, amortised.
    if (compact_next_ || journal_lines_ >= std::max<size_t>(256, records_.size() / 4))
        compact_locked();
    else
        append_locked(record);
}

void Index::flush() {
    std::lock_guard lock(mutex_);
    if (journal_lines_ > 0 || (compact_next_ && !records_.empty())) compact_locked();
}

std::vector<TargetRecord> Index::records() const {
    std::lock_guard lock(mutex_);
    std::vector<TargetRecord> all;
    all.reserve(records_.size());
    for (const auto& [key, record] : records_) all.push_back(record);
    return all;
}

void Index::insert_locked(const TargetRecord& record) {
    TargetKey key(target_key(record));
    if (const auto it = records_.find(key); it != records_.end()) {
        for (const auto& artifact : it->second.artifacts) {
            auto& keys = holders_[artifact.path];
            keys.erase(key);
            if (keys.empty()) holders_.erase(artifact.path);
        }
    }
    for (const auto& artifact : record.artifacts) holders_[artifact.path].insert(key);
    records_.insert_or_assign(std::move(key), record);
}

void Index::append_locked(const TargetRecord& record) {
    if (journal_fd_ < 0) {
        fs::create_directories(out_dir_);
        journal_fd_ = ::open(journal_path_.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (journal_fd_ < 0) throw Error(journal_path_.string() + ": cannot open: " + std::strerror(errno));
    }
    // One write(2) of a whole line: a kill tears at most the journal's last line.
    const std::string line = Json(record).dump() + '\n';
    const ssize_t written = ::write(journal_fd_, line.data(), line.size());
    if (written != static_cast<ssize_t>(line.size())) {
        const std::string why = written < 0 ? std::strerror(errno) : "a short write";
        // Nothing goes after what part of the line got there: the next put rewrites index.json
        // (with this record) and removes the journal.
        ::close(journal_fd_);
        journal_fd_ = -1;
        compact_next_ = true;
        throw Error(journal_path_.string() + ": cannot write: " + why);
    }
    ++journal_lines_;
}

void Index::compact_locked() {
    fs::create_directories(out_dir_);
    Json targets = Json::array();
    for (const auto& [key, record] : records_) targets.push_back(record);
    const fs::path temporary = path_.string() + ".tmp";
    {
        std::ofstream out(temporary, std::ios::trunc);
        out << Json{{"schema", kSchema}, {"targets", std::move(targets)}}.dump(2) << '\n';
        if (!out) throw Error(temporary.string() + ": cannot write");
    }
    fs::rename(temporary, path_);
    // index.json holds the journal's records now: were the next lines not reached, replaying
    // the journal again would change nothing.
    compact_next_ = false;
    if (journal_fd_ >= 0) ::close(journal_fd_);
    journal_fd_ = -1;
    journal_lines_ = 0;
    fs::remove(journal_path_);
}

}  // namespace kbuild
