// One libp2p stream's throughput, js-libp2p's side (benchmarks/ipfs_stream_throughput.py): TCP on
// loopback only, Noise, yamux; no identify, no DHT, no bootstrap. Run inside `unshare -n`.
//
//   node js_stream_throughput.mjs sink SECONDS          listen on 127.0.0.1, print
//                                                       {"listening": [...]}; on each stream of
//                                                       /p2pkit/throughput/1.0.0 count the bytes
//                                                       until the sender's FIN, answer the count
//                                                       (8 bytes, big-endian), close
//   node js_stream_throughput.mjs send MULTIADDR BYTES  dial, open the stream, send BYTES in
//                                                       64 KiB writes, FIN, wait for the count;
//                                                       print {"bytes", "seconds", "handshake"}
//
// Bounded: the sink exits after SECONDS, the sender after 120 s.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { multiaddr } from '@multiformats/multiaddr'

const PROTOCOL = '/p2pkit/throughput/1.0.0'
const CHUNK = 65536
const [mode, arg, bytesText] = process.argv.slice(2)
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')
const limit = (mode === 'sink' ? Number(arg) : 120) * 1000
setTimeout(() => { out({ error: 'timeout' }); process.exit(3) }, limit).unref()

const node = await createLibp2p({
  addresses: { listen: mode === 'sink' ? ['/ip4/127.0.0.1/tcp/0'] : [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  connectionManager: { inboundConnectionThreshold: 1000 }
})

const drained = (stream) => new Promise((resolve, reject) => {
  stream.addEventListener('drain', resolve, { once: true })
  stream.addEventListener('close', () => reject(new Error('stream closed')), { once: true })
})

if (mode === 'sink') {
  await node.handle(PROTOCOL, async (stream) => {
    let n = 0
    for await (const chunk of stream) n += chunk.byteLength
    const answer = new Uint8Array(8)
    new DataView(answer.buffer).setBigUint64(0, BigInt(n))
    stream.send(answer)
    await stream.close()
  })
  out({ listening: node.getMultiaddrs().map((a) => a.toString()), id: node.peerId.toString() })
  setTimeout(async () => { await node.stop(); process.exit(0) }, limit - 1000)
} else {
  const total = Number(bytesText)
  const chunk = new Uint8Array(CHUNK)
  for (let i = 0; i < CHUNK; i++) chunk[i] = (i * 131 + 7) & 0xff
  const began = performance.now()
  const stream = await node.dialProtocol(multiaddr(arg), PROTOCOL)
  const handshake = (performance.now() - began) / 1000
  const answered = new Promise((resolve) => {
    const got = []
    let size = 0
    stream.addEventListener('message', (evt) => {
      const data = evt.data.subarray ? evt.data.subarray() : evt.data
      got.push(data)
      size += data.byteLength
      if (size >= 8) {
        const all = new Uint8Array(size)
        let at = 0
        for (const part of got) { all.set(part, at); at += part.byteLength }
        resolve(Number(new DataView(all.buffer).getBigUint64(0)))
      }
    })
  })
  const started = performance.now()
  let sent = 0
  while (sent < total) {
    const piece = total - sent >= CHUNK ? chunk : chunk.subarray(0, total - sent)
    if (!stream.send(piece)) await drained(stream)
    sent += piece.byteLength
  }
  await stream.close()
  const received = await answered
  const seconds = (performance.now() - started) / 1000
  out({ bytes: total, received, seconds, handshake })
  await node.stop()
  process.exit(received === total ? 0 : 1)
}
