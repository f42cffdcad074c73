// Human output: lists joined into a line, and left-aligned columns under a header, as
// `docker ps` prints them.
#pragma once

#include <ostream>
#include <string>
#include <vector>

namespace kbuild {

// The items with `separator` between them: "debian, ubuntu".
inline std::string join(const std::vector<std::string>& items, const char* separator = ", ") {
    std::string out;
    for (const auto& item : items) out += (out.empty() ? "" : separator) + item;
    return out;
}

class Table {
public:
    explicit Table(std::vector<std::string> header) : rows_{std::move(header)} {}

    void add(std::vector<std::string> row) { rows_.push_back(std::move(row)); }

    void print(std::ostream& out) const {
        std::vector<size_t> width(rows_.front().size(), 0);
        for (const auto& row : rows_)
            for (size_t i = 0; i < row.size() && i < width.size(); ++i) width[i] = std::max(width[i], row[i].size());
        for (const auto& row : rows_) {
            std::string line;
            for (size_t i = 0; i < row.size(); ++i) {
                line += row[i];
                if (i + 1 < row.size()) line.append(width[i] - row[i].size() + 2, ' ');
            }
            // An empty last cell would leave the padding of the one before it.
            line.erase(line.find_last_not_of(' ') + 1);
            out << line << '\n';
        }
    }

private:
    std::vector<std::vector<std::string>> rows_;
};

}  // namespace kbuild
