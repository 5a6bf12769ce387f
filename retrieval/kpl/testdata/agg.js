// Cross-check helper for kpl tests, run with NODE_PATH pointing at the pinned
// node_modules. Reads JSON from stdin:
//   {"aggregate": [[{"partitionKey", "explicitHashKey"?, "data" (base64)}...]...],
//    "deaggregate": ["<base64 kinesis record data>", ...]}
// and writes {"aggregated": [{"partitionKey","explicitHashKey","data"}...],
//             "deaggregated": [[{"partitionKey","explicitHashKey","subSequenceNumber","data"}...]...]}.
'use strict';
const agg = require('aws-kinesis-agg');

let input = '';
process.stdin.on('data', (c) => { input += c; });
process.stdin.on('end', () => {
  const req = JSON.parse(input);
  const out = { aggregated: [], deaggregated: [] };
  for (const recs of req.aggregate || []) {
    const a = new agg.RecordAggregator();
    for (const r of recs) {
      const u = { partitionKey: r.partitionKey, data: Buffer.from(r.data, 'base64') };
      if (r.explicitHashKey) u.explicitHashKey = r.explicitHashKey;
      a.addUserRecord(u);
    }
    const e = a.build();
    out.aggregated.push({ partitionKey: e.partitionKey, explicitHashKey: e.ExplicitHashKey || '', data: e.data.toString('base64') });
  }
  for (const d of req.deaggregate || []) {
    agg.deaggregateSync({ data: d, partitionKey: 'container', sequenceNumber: '1' }, true, (err, recs) => {
      if (err) throw err;
      out.deaggregated.push(recs.map((r) => ({
        partitionKey: r.partitionKey, explicitHashKey: r.explicitPartitionKey || '',
        subSequenceNumber: r.subSequenceNumber, data: r.data,
      })));
    });
  }
  process.stdout.write(JSON.stringify(out));
});
