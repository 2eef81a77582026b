// The reference UnixFS importer and CAR codec for p2pkit's tests: js ipfs-unixfs-importer (what
// Helia uses) and @ipld/car. No network.
//   node js_unixfs_import.mjs import FILE PROFILE [OUT.car]   PROFILE: unixfs-v0-2015,
//        unixfs-v1-2025 or importer-default (no profile); prints {"cid": ...}; writes every block to OUT.car
//   node js_unixfs_import.mjs read-car CAR                      prints {"roots": [...], "cids": [...]}
//   node js_unixfs_import.mjs import-dir DIR PROFILE [THRESHOLD]   a directory tree (files and
//        empty directories), shardSplitThresholdBytes THRESHOLD; prints {"cid": ...}
import { importer } from 'ipfs-unixfs-importer'
import { MemoryBlockstore } from 'blockstore-core/memory'
import { CarWriter, CarReader } from '@ipld/car'
import fs from 'fs'
import path from 'path'

const [mode, ...args] = process.argv.slice(2)
const out = (doc) => process.stdout.write(JSON.stringify(doc) + '\n')

if (mode === 'import') {
  const [file, profile, carPath] = args
  const options = profile === 'importer-default' ? {} : { profile }
  const store = new MemoryBlockstore()
  let root
  for await (const entry of importer([{ content: fs.readFileSync(file) }], store, options)) root = entry
  if (carPath) {
    const { writer, out: bytes } = CarWriter.create([root.cid])
    const chunks = []
    const collect = (async () => { for await (const c of bytes) chunks.push(c) })()
    for await (const { cid, bytes: parts } of store.getAll()) {
      // blockstore-core 7 hands a block out as an iterable of byte chunks
      const pieces = []
      for await (const p of parts) pieces.push(p)
      await writer.put({ cid, bytes: new Uint8Array(Buffer.concat(pieces)) })
    }
    await writer.close()
    await collect
    fs.writeFileSync(carPath, Buffer.concat(chunks))
  }
  out({ cid: root.cid.toString() })
} else if (mode === 'import-dir') {
  const [dir, profile, threshold] = args
  const options = profile === 'importer-default' ? {} : { profile }
  if (threshold) options.shardSplitThresholdBytes = Number(threshold)
  const base = path.basename(dir)
  const entries = []
  const visit = (abs, rel) => {
    const names = fs.readdirSync(abs).sort()
    if (names.length === 0 && rel !== base) entries.push({ path: rel })
    for (const name of names) {
      const a = path.join(abs, name)
      const r = rel + '/' + name
      if (fs.statSync(a).isDirectory()) visit(a, r)
      else entries.push({ path: r, content: fs.readFileSync(a) })
    }
  }
  visit(dir, base)
  let root
  for await (const entry of importer(entries, new MemoryBlockstore(), options)) {
    if (entry.path === base) root = entry
  }
  out({ cid: root.cid.toString() })
} else if (mode === 'read-car') {
  const reader = await CarReader.fromBytes(fs.readFileSync(args[0]))
  const cids = []
  for await (const { cid } of reader.blocks()) cids.push(cid.toString())
  out({ roots: (await reader.getRoots()).map(String), cids })
}
