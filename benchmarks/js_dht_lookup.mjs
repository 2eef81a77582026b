// One kad-dht lookup by js-libp2p (@libp2p/kad-dht, the DHT Helia 7 uses), timed: a client-mode
// node dials one server of a local network, waits until it is in its routing table, then runs
// findProviders(CID) to its end and getClosestPeers(CID's multihash). Run inside `unshare -n`.
//
//   node js_dht_lookup.mjs SEED_MULTIADDR CID
//
// Prints one JSON document: milliseconds to the first provider and to the end, queries sent.
import { createLibp2p } from 'libp2p'
import { tcp } from '@libp2p/tcp'
import { noise } from '@chainsafe/libp2p-noise'
import { yamux } from '@chainsafe/libp2p-yamux'
import { identify } from '@libp2p/identify'
import { ping } from '@libp2p/ping'
import { multiaddr } from '@multiformats/multiaddr'
import { kadDHT, passthroughMapper } from '@libp2p/kad-dht'
import { CID } from 'multiformats/cid'

setTimeout(() => { process.stdout.write(JSON.stringify({ error: 'timeout' }) + '\n'); process.exit(3) }, 60000).unref()
const [seed, cidText] = process.argv.slice(2)
const node = await createLibp2p({
  transports: [tcp()],
  connectionEncrypters: [noise()],
  streamMuxers: [yamux()],
  services: {
    identify: identify(),
    ping: ping(),
    dht: kadDHT({ protocol: '/ipfs/kad/1.0.0', clientMode: true, peerInfoMapper: passthroughMapper })
  }
})
const dht = node.services.dht
await node.dial(multiaddr(seed))
for (let i = 0; i < 100 && dht.routingTable.size === 0; i++) {
  await new Promise((resolve) => setTimeout(resolve, 50))
}
const cid = CID.parse(cidText)
const out = { routing_table: dht.routingTable.size }
// js-libp2p holds every query until its first self-query has run (query/manager.js); wait for
// it here (an internal field: skipped if absent) so that the figures below are the lookups
let started = performance.now()
const selfQuery = dht.queryManager?.initialQuerySelfHasRun?.promise
if (selfQuery != null) await Promise.race([selfQuery, new Promise((resolve) => setTimeout(resolve, 10000))])
out.self_query_wait_ms = performance.now() - started
out.routing_table_after_self_query = dht.routingTable.size
started = performance.now()
let queries = 0
const providers = new Set()
for await (const ev of dht.findProviders(cid, { signal: AbortSignal.timeout(30000) })) {
  if (ev.name === 'SEND_QUERY') queries++
  if (ev.name === 'PROVIDER' || ev.name === 'PEER_RESPONSE') {
    for (const p of ev.providers ?? []) {
      if (providers.size === 0) out.first_provider_ms = performance.now() - started
      providers.add(p.id.toString())
    }
  }
}
out.find_providers_ms = performance.now() - started
out.find_providers_queries = queries
out.providers = [...providers]
started = performance.now()
queries = 0
let closest = 0
for await (const ev of dht.getClosestPeers(cid.multihash.bytes, { signal: AbortSignal.timeout(30000) })) {
  if (ev.name === 'SEND_QUERY') queries++
  if (ev.name === 'FINAL_PEER') closest++
}
out.closest_peers_ms = performance.now() - started
out.closest_peers_queries = queries
out.closest = closest
process.stdout.write(JSON.stringify(out) + '\n')
await node.stop()
process.exit(0)
