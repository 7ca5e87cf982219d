#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace calcmesh {

/// Appends `text` as a JSON string, escaped as nlohmann's dump escapes it.
void append_json_string(std::string& out, std::string_view text);
/// Appends `value` as a JSON number.
void append_json_integer(std::string& out, std::int64_t value);

/// Writes one JSON object into a string member by member, without building a document: every
/// message of a job is written this way, since a document's allocations cost more than the
/// rest of the work. Keys must be added in alphabetical order for the text to equal nlohmann's
/// dump of the same object (its objects are sorted maps): schema::write_object does so.
class JsonObjectWriter {
  public:
    /// Opens the object; the destructor closes it.
    explicit JsonObjectWriter(std::string& out) : out_(out) { out_ += '{'; }
    ~JsonObjectWriter() { out_ += '}'; }
    JsonObjectWriter(const JsonObjectWriter&) = delete;
    JsonObjectWriter& operator=(const JsonObjectWriter&) = delete;

    /// Starts member `name` and returns the text to append its value to.
    std::string& key(std::string_view name);

  private:
    std::string& out_;
    bool first_ = true;
};

}  // namespace calcmesh
