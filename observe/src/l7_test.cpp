#include "l7.hpp"

#include <gtest/gtest.h>

#include <vector>

namespace calcmesh::observe {
namespace {

// Builds Kafka wire bytes: big-endian integers, classic and compact strings.
class Bytes {
  public:
    Bytes& i8(int v) { return put(v, 1); }
    Bytes& i16(int v) { return put(v, 2); }
    Bytes& i32(long long v) { return put(v, 4); }
    Bytes& uvarint(unsigned v) {
        while (v >= 0x80) {
            bytes_.push_back(static_cast<std::uint8_t>(v | 0x80));
            v >>= 7;
        }
        bytes_.push_back(static_cast<std::uint8_t>(v));
        return *this;
    }
    Bytes& string(const std::string& s) {
        i16(static_cast<int>(s.size()));
        bytes_.insert(bytes_.end(), s.begin(), s.end());
        return *this;
    }
    Bytes& compact_string(const std::string& s) {
        uvarint(static_cast<unsigned>(s.size()) + 1);
        bytes_.insert(bytes_.end(), s.begin(), s.end());
        return *this;
    }
    // The request with its size prefix.
    std::vector<std::uint8_t> request() const {
        Bytes framed;
        framed.i32(static_cast<long long>(bytes_.size()));
        auto out = framed.bytes_;
        out.insert(out.end(), bytes_.begin(), bytes_.end());
        return out;
    }

  private:
    Bytes& put(long long v, int size) {
        for (int i = size - 1; i >= 0; --i) {
            bytes_.push_back(static_cast<std::uint8_t>((v >> (8 * i)) & 0xff));
        }
        return *this;
    }
    std::vector<std::uint8_t> bytes_;
};

TEST(Http, RequestLineAndHostHeader) {
    const auto message = parse_http(
        "GET /compute?a=7&b=2 HTTP/1.1\r\nUser-Agent: x\r\nhost: addition-worker:8091\r\n\r\n");
    ASSERT_TRUE(message);
    EXPECT_FALSE(message->response);
    EXPECT_EQ(message->method, "GET");
    EXPECT_EQ(message->target, "/compute?a=7&b=2");
    EXPECT_EQ(message->protocol, "HTTP/1.1");
    EXPECT_EQ(message->host, "addition-worker:8091");
}

TEST(Http, HostHeaderCutOffByTheCaptureIsIgnored) {
    const auto message = parse_http("POST /save_log HTTP/1.1\r\nHost: log-coll");
    ASSERT_TRUE(message);
    EXPECT_EQ(message->method, "POST");
    EXPECT_EQ(message->host, "");
}

TEST(Http, StatusLine) {
    const auto message = parse_http("HTTP/1.1 403 Forbidden\r\nContent-Length: 13\r\n");
    ASSERT_TRUE(message);
    EXPECT_TRUE(message->response);
    EXPECT_EQ(message->status, 403u);
}

TEST(Http, AnythingElseIsNoMessage) {
    EXPECT_FALSE(parse_http("{\"operation\":\"addition\"}\r\n"));
    EXPECT_FALSE(parse_http("GET /no-line-end HTTP/1.1"));
    EXPECT_FALSE(parse_http("get / HTTP/1.1\r\n"));
    EXPECT_FALSE(parse_http("HTTP/1.1 999 Nope\r\n"));
}

TEST(Kafka, ProduceV7NamesItsTopicAndClient) {
    const auto bytes = Bytes()
                           .i16(0)
                           .i16(7)
                           .i32(42)
                           .string("calcmesh-worker")
                           .i16(-1)  // no transactional id
                           .i16(-1)
                           .i32(30000)
                           .i32(1)
                           .string("results")
                           .request();
    const auto request = parse_kafka_request(bytes);
    ASSERT_TRUE(request);
    EXPECT_EQ(kafka_api_name(request->api_key), "produce");
    EXPECT_EQ(request->api_version, 7);
    EXPECT_EQ(request->correlation_id, 42);
    EXPECT_EQ(request->client_id, "calcmesh-worker");
    EXPECT_EQ(request->topic, "results");
}

TEST(Kafka, FetchV11NamesItsTopic) {
    const auto bytes = Bytes()
                           .i16(1)
                           .i16(11)
                           .i32(7)
                           .string("rdkafka")
                           .i32(-1)
                           .i32(500)
                           .i32(1)
                           .i32(52428800)
                           .i8(0)
                           .i32(0)
                           .i32(-1)
                           .i32(1)
                           .string("addition_requests")
                           .request();
    const auto request = parse_kafka_request(bytes);
    ASSERT_TRUE(request);
    EXPECT_EQ(kafka_api_name(request->api_key), "fetch");
    EXPECT_EQ(request->topic, "addition_requests");
}

TEST(Kafka, FlexibleMetadataV12SkipsTaggedFieldsAndTopicIds) {
    const auto bytes = Bytes()
                           .i16(3)
                           .i16(12)
                           .i32(3)
                           .string("rdkafka")
                           .uvarint(0)  // header tagged fields
                           .uvarint(2)  // one topic
                           .i32(0)
                           .i32(0)
                           .i32(0)
                           .i32(0)  // topic id
                           .compact_string("division_requests")
                           .request();
    const auto request = parse_kafka_request(bytes);
    ASSERT_TRUE(request);
    EXPECT_EQ(kafka_api_name(request->api_key), "metadata");
    EXPECT_EQ(request->topic, "division_requests");
}

TEST(Kafka, ApiVersionsHasNoTopicAndTruncatedTopicsAreEmpty) {
    const auto versions = parse_kafka_request(Bytes().i16(18).i16(3).i32(1).string("c").request());
    ASSERT_TRUE(versions);
    EXPECT_EQ(kafka_api_name(versions->api_key), "apiversions");
    EXPECT_EQ(versions->topic, "");

    auto produce = Bytes()
                       .i16(0)
                       .i16(7)
                       .i32(1)
                       .string("c")
                       .i16(-1)
                       .i16(1)
                       .i32(1)
                       .i32(1)
                       .string("results")
                       .request();
    produce.resize(produce.size() - 3);  // the capture ended inside the topic name
    const auto cut = parse_kafka_request(produce);
    ASSERT_TRUE(cut);
    EXPECT_EQ(cut->topic, "");
}

TEST(Kafka, ImplausibleHeadersAreNoRequest) {
    EXPECT_FALSE(parse_kafka_request(Bytes().i16(300).i16(1).i32(1).string("c").request()));
    EXPECT_FALSE(parse_kafka_request(Bytes().i16(0).i16(7).request()));
    EXPECT_EQ(kafka_api_name(60), "apikey60");
}

}  // namespace
}  // namespace calcmesh::observe
