#include "index_page.hpp"

namespace calcmesh::job_submitter {

const std::string_view kIndexPage = R"html(<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>calcmesh · job_submitter</title>
<style>
  body { font: 15px/1.5 system-ui, sans-serif; max-width: 44rem; margin: 2rem auto; color: #222; }
  h1 { font-size: 1.4rem; }
  form { display: grid; grid-template-columns: 8rem 1fr; gap: .5rem 1rem; align-items: center; }
  input, select, button { font: inherit; padding: .3rem .5rem; }
  button { grid-column: 2; justify-self: start; }
  #answer { margin-top: 1.5rem; padding: 1rem; border-radius: .4rem; background: #f3f5f7; }
  #answer.error { background: #fdecea; }
  pre { white-space: pre-wrap; margin: .5rem 0 0; font-size: .85rem; }
  .result { font-size: 1.3rem; font-weight: 600; }
</style>
</head>
<body>
<h1>calcmesh job_submitter</h1>
<p>Submit an arithmetic job on two 64-bit integers. A worker computes it, reached over HTTP or
through Kafka, and reports it to log_collector.</p>
<form id="job">
  <label for="operation">operation</label>
  <select id="operation" name="operation">
    <option>addition</option><option>subtraction</option>
    <option selected>multiplication</option><option>division</option>
  </select>
  <label for="a">a</label><input id="a" name="a" value="6" inputmode="numeric" required>
  <label for="b">b</label><input id="b" name="b" value="7" inputmode="numeric" required>
  <label for="mechanism">mechanism</label>
  <select id="mechanism" name="mechanism"><option>http</option><option>kafka</option></select>
  <button type="submit">Submit</button>
</form>
<div id="answer" hidden></div>
<script>
const form = document.getElementById('job');
const answer = document.getElementById('answer');
function integer(text) {
  // Keeps the exact digits: JSON numbers beyond 2^53 lose precision in JavaScript.
  return /^-?\d+$/.test(text.trim()) ? text.trim() : JSON.stringify(text);
}
form.addEventListener('submit', async (event) => {
  event.preventDefault();
  const body = `{"operation":${JSON.stringify(form.operation.value)},` +
               `"a":${integer(form.a.value)},"b":${integer(form.b.value)},` +
               `"mechanism":${JSON.stringify(form.mechanism.value)}}`;
  answer.hidden = false;
  answer.className = '';
  answer.textContent = 'computing…';
  try {
    const response = await fetch('/submit', {
      method: 'POST', headers: {'content-type': 'application/json'}, body});
    const text = await response.text();
    let job = {};
    try { job = JSON.parse(text); } catch (e) { job = {}; }
    answer.className = response.ok ? '' : 'error';
    const headline = document.createElement('div');
    headline.className = 'result';
    if (response.ok) {
      const raw = text.match(/"result":(-?\d+)/);
      const rest = text.match(/"remainder":(-?\d+)/);
      headline.textContent = `result ${raw ? raw[1] : job.result}` +
                             (rest ? `, remainder ${rest[1]}` : '') +
                             ` (${job.worker}, ${job.mechanism}, ${Number(job.elapsed_ms).toFixed(2)} ms)`;
    } else {
      headline.textContent = `HTTP ${response.status}: ${job.error ? job.error.message : text}`;
    }
    const detail = document.createElement('pre');
    detail.textContent = text;
    answer.replaceChildren(headline, detail);
  } catch (error) {
    answer.className = 'error';
    answer.textContent = `request failed: ${error}`;
  }
});
</script>
</body>
</html>
)html";

}  // namespace calcmesh::job_submitter
