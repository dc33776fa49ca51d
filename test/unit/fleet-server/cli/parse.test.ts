import { InvalidArgumentError } from 'commander';
import { describe, expect, it } from 'vitest';
import {
  collectTags,
  parseBaseUrl,
  parseDuration,
  parseList,
  parseModelName,
  parseModelRef,
  parsePort,
  parsePositiveNumber,
  parseTags,
} from '../../../../fleet-server/cli/parse.js';

function rejection(fn: () => unknown): InvalidArgumentError {
  try {
    fn();
  } catch (err) {
    expect(err).toBeInstanceOf(InvalidArgumentError);
    return err as InvalidArgumentError;
  }
  throw new Error('expected the parser to reject its input');
}

describe('parseTags', () => {
  it('parses a comma list of key=value, trimming spaces and keeping empty values', () => {
    expect(parseTags('site=berlin,line=2')).toEqual({ site: 'berlin', line: '2' });
    expect(parseTags(' site = berlin , env=')).toEqual({ site: 'berlin', env: '' });
    expect(parseTags('k=a=b')).toEqual({ k: 'a=b' });
  });

  it.each([
    ['site', "tag 'site' must look like key=value"],
    ['site=a,,b=c', "tag '' must look like key=value"],
    ['=x', "tag key '' in '=x' must be"],
    ['a b=c', "tag key 'a b' in 'a b=c'"],
    ['site=a,site=b', "tag 'site' is given twice"],
  ])('rejects %j naming the bad part', (input, message) => {
    expect(rejection(() => parseTags(input)).message).toContain(message);
  });

  it('collectTags merges repeated --tag options and rejects conflicting values', () => {
    expect(collectTags('b=2', collectTags('a=1'))).toEqual({ a: '1', b: '2' });
    expect(collectTags('a=1', { a: '1' })).toEqual({ a: '1' });
    expect(rejection(() => collectTags('a=2', { a: '1' })).message).toContain("tag 'a'");
  });
});

describe('parseDuration', () => {
  it.each([
    ['30s', 30],
    ['10m', 600],
    ['24h', 86_400],
    ['7d', 604_800],
    ['1h30m', 5400],
    [' 90s ', 90],
  ])('%j is %d seconds', (input, seconds) => {
    expect(parseDuration(input)).toBe(seconds);
  });

  it.each(['', '5', '5y', '-5m', '1.5h', 'h', '24 h', '0s', '0d0h'])('rejects %j naming it', (input) => {
    expect(rejection(() => parseDuration(input)).message).toContain(`'${input}'`);
  });

  it('rejects durations too long to count in seconds exactly', () => {
    expect(rejection(() => parseDuration('99999999999999999d')).message).toContain('too long');
  });
});

describe('parseModelRef', () => {
  it('splits NAME@VERSION', () => {
    expect(parseModelRef('demo@3')).toEqual({ name: 'demo', version: 3 });
    expect(parseModelRef('my.model_v2-x@10')).toEqual({ name: 'my.model_v2-x', version: 10 });
  });

  it('takes an alias in place of the version', () => {
    expect(parseModelRef('demo@production')).toEqual({ name: 'demo', version: 'production' });
    expect(parseModelRef('demo@candidate')).toEqual({ name: 'demo', version: 'candidate' });
  });

  it.each([
    ['demo', 'must look like NAME@VERSION'],
    ['demo@', "version '' in 'demo@'"],
    ['@3', "model name '' in '@3'"],
    ['demo@0', "version '0'"],
    ['demo@-1', "version '-1'"],
    ['demo@1.5', "version '1.5'"],
    ['demo@03', "version '03'"],
    ['demo@latest', "version 'latest' in 'demo@latest' must be a positive integer or production / candidate"],
    ['demo@Production', "version 'Production'"],
    ['Demo@1', "model name 'Demo'"],
    ['de mo@1', "model name 'de mo'"],
  ])('rejects %j: %s', (input, message) => {
    expect(rejection(() => parseModelRef(input)).message).toContain(message);
  });

  it('parseModelName accepts what the registry accepts', () => {
    expect(parseModelName('demo')).toBe('demo');
    expect(rejection(() => parseModelName('Demo')).message).toContain("'Demo'");
    expect(rejection(() => parseModelName('-x')).message).toContain("'-x'");
  });
});

describe('other values', () => {
  it('parseList splits ids and rejects empty or repeated ones', () => {
    expect(parseList('a,b, c')).toEqual(['a', 'b', 'c']);
    expect(rejection(() => parseList('a,,b')).message).toContain('empty item');
    expect(rejection(() => parseList('a,b,a')).message).toContain("'a' is listed twice");
  });

  it('parsePort accepts 0..65535', () => {
    expect(parsePort('0')).toBe(0);
    expect(parsePort('8080')).toBe(8080);
    expect(parsePort('65535')).toBe(65_535);
    for (const bad of ['65536', '-1', 'http', '80.5', '']) {
      expect(rejection(() => parsePort(bad)).message).toContain(`'${bad}'`);
    }
  });

  it('parsePositiveNumber accepts positive numbers only', () => {
    expect(parsePositiveNumber('30')).toBe(30);
    expect(parsePositiveNumber('0.5')).toBe(0.5);
    for (const bad of ['0', '-1', 'x', '', 'Infinity']) {
      expect(rejection(() => parsePositiveNumber(bad)).message).toContain(`'${bad}'`);
    }
  });

  it('parseBaseUrl keeps http(s) URLs without a trailing slash', () => {
    expect(parseBaseUrl('http://127.0.0.1:8080/')).toBe('http://127.0.0.1:8080');
    expect(parseBaseUrl('https://fleet.example.com/base/')).toBe('https://fleet.example.com/base');
    expect(rejection(() => parseBaseUrl('fleet:8080x')).message).toContain('http://');
    expect(rejection(() => parseBaseUrl('not a url')).message).toContain("'not a url' is not a URL");
    expect(rejection(() => parseBaseUrl('mqtt://x:1883')).message).toContain('http:// or https://');
  });
});
