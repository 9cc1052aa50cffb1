/**
 * Reads at most `maxBytes` of a response body as UTF-8 text (undici has already undone any
 * gzip/deflate). Returns undefined, and stops reading, when the body is larger: a token
 * endpoint never needs that much, and a runaway answer must not fill our memory.
 */
export async function readBodyText(res: Response, maxBytes: number): Promise<string | undefined> {
  const declared = Number(res.headers.get('content-length'));
  if (res.headers.get('content-encoding') === null && declared > maxBytes) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.body) return '';
  // undici types the stream loosely (ReadableStream<any>); a fetch body is bytes.
  const reader = (res.body as ReadableStream<Uint8Array>).getReader();
  const chunks: Uint8Array[] = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.byteLength;
    if (size > maxBytes) {
      await reader.cancel();
      return undefined;
    }
    chunks.push(value);
  }
  // TextDecoder drops a leading BOM, which JSON.parse would otherwise choke on.
  return new TextDecoder('utf-8').decode(Buffer.concat(chunks));
}
