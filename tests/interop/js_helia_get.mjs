// Helia (helia 7, @helia/bitswap, @helia/unixfs) for p2pkit's interop tests: libp2p on TCP,
// Noise, yamux, identify; no routers, no HTTP gateways, no bootstrap. Run inside `unshare -n`.
//   node js_helia_get.mjs get MULTIADDR CID     fetch over Bitswap from that peer; prints
//                                               {"bytes": N, "sha256": HEX} or {"error": ...}
//   node js_helia_get.mjs serve FILE SECONDS    add FILE (Helia's defaults), listen on 127.0.0.1;
//                                               prints {"cid": ..., "listening": [...]}
import { createHeliaLight } from 'helia'
import { withLibp2pLight } from '@helia/libp2p'
import { withBitswap } from '@helia/bitswap'
import { unixfs } from '@helia/unixfs'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { multiaddr } from '@multiformats/multiaddr'
import { CID } from 'multiformats/cid'
import { createHash } from 'crypto'

const [mode, target, cidText] = process.argv.slice(2)
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')
const limit = mode === 'serve' ? Number(cidText) * 1000 : 40000
setTimeout(() => { out({ error: 'timeout' }); process.exit(3) }, limit).unref()

const helia = withBitswap(withLibp2pLight(createHeliaLight({}), {
  addresses: { listen: mode === 'serve' ? ['/ip4/127.0.0.1/tcp/0'] : [] },
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: { identify: identify() }
}))
try {
  await helia.start()
  if (mode === 'serve') {
    const { readFileSync } = await import('fs')
    const cid = await unixfs(helia).addBytes(readFileSync(target))
    out({ cid: cid.toString(), listening: helia.libp2p.getMultiaddrs().map(String) })
    await new Promise((resolve) => setTimeout(resolve, limit - 1000))
  } else {
    await helia.libp2p.dial(multiaddr(target))
    const hash = createHash('sha256')
    let bytes = 0
    for await (const buf of unixfs(helia).cat(CID.parse(cidText), { signal: AbortSignal.timeout(30000) })) {
      hash.update(buf)
      bytes += buf.length
    }
    out({ bytes, sha256: hash.digest('hex') })
  }
} catch (e) {
  out({ error: String(e && e.message || e) })
}
await helia.stop()
process.exit(0)
