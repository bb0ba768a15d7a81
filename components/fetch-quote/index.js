// GET a price quote from an allowed host. The host checks the URL and the resolved address;
// a denied request comes back as a typed error, which this action reports instead of crashing.
import http from 'attex:action/http@0.1.0';
import logging from 'wasi:logging/logging@0.1.0-draft';

function utf8Decode(bytes) {
  let s = '';
  for (let i = 0; i < bytes.length; i++) s += '%' + bytes[i].toString(16).padStart(2, '0');
  return decodeURIComponent(s);
}

export const action = {
  run(input) {
    const { symbol, endpoint = 'https://quotes.attex.dev/v1/quote' } = JSON.parse(input);
    if (typeof symbol !== 'string' || !/^[A-Z]{1,8}$/.test(symbol)) {
      throw { code: 'invalid-input', message: 'symbol must be 1-8 capital letters' };
    }
    logging.log('info', 'fetch-quote', `quote for ${symbol}`);
    let res;
    try {
      res = http.fetch({ method: 'GET', url: `${endpoint}?symbol=${symbol}`, headers: [['accept', 'application/json']], body: undefined, secretHeaders: [] });
    } catch (e) {
      const err = e && e.payload !== undefined ? e.payload : e;
      throw { code: `http-${err.tag ?? 'error'}`, message: String(err.val ?? err) };
    }
    if (res.status !== 200) throw { code: 'upstream', message: `status ${res.status}` };
    const quote = JSON.parse(utf8Decode(res.body));
    return JSON.stringify({ symbol, price: quote.price, currency: quote.currency ?? 'USD' });
  },
};
