// Send each message of a file (segments on separate lines, messages separated by a blank line)
// to HOST:PORT with simple-hl7's MLLP client, on one kept-alive connection; print each ACK's
// MSA-1 and MSA-2 as "CODE CONTROL_ID".
const fs = require('fs');
const hl7 = require('simple-hl7');

const [host, port, file] = process.argv.slice(2);
const parser = new hl7.Parser({ segmentSeperator: '\n' });
const texts = fs.readFileSync(file, 'utf8').split(/\n\s*\n/).filter((t) => t.trim());
const client = hl7.Server.createTcpClient({ host, port: Number(port), keepalive: true });

function next(i) {
  if (i >= texts.length) { client.close(); return; }
  const message = parser.parse(texts[i].trim());
  client.send(message, (err, ack) => {
    if (err) { console.error(err.message); process.exit(2); }
    const msa = ack.getSegment('MSA');
    console.log(`${msa.getField(1)} ${msa.getField(2)}`);
    setImmediate(() => next(i + 1));  // the client clears its busy flag after this callback
  });
}
next(0);
